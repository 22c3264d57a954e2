// The Queue and MemoryStorage classes of one build for the experiments: `platformatic` is
// @platformatic/job-queue (with a Promise.withResolvers shim on Node 20), anything else the
// absolute path of a relayq `dist` directory.
export async function loadLib (lib) {
  if (lib === 'platformatic') {
    if (typeof Promise.withResolvers !== 'function') Promise.withResolvers = function () { let res, rej; const promise = new Promise((resolve, reject) => { res = resolve; rej = reject }); return { promise, resolve: res, reject: rej } }
    const m = await import('@platformatic/job-queue')
    return { Q: m.Queue, S: m.MemoryStorage }
  }
  const m = await import(lib + '/index.js')
  return { Q: m.Queue, S: m.MemoryStorage }
}
