/**
 * A queue that keeps working, to watch in the dashboard: `npm run live` in one terminal, then
 * `npx relayq dashboard --url file:///tmp/relayq-live` in another and open http://127.0.0.1:3000.
 * Jobs arrive every 200 ms on two queues; about one in six fails (the dashboard groups the
 * failures and retries them); every tenth is an RPC call whose caller waits for the result; a
 * third queue has jobs and no consumer (the overview warns about it). Ctrl-C stops it.
 * The directory is the first argument (default /tmp/relayq-live).
 */
import { FileStorage, Producer, Queue } from '../src/index.ts'

const dir = process.argv[2] ?? '/tmp/relayq-live'
const storage = new FileStorage({ basePath: dir })

interface Order { sku: string, quantity: number }

const orders = new Queue<Order, { total: number }>({ storage, name: 'orders', concurrency: 4, maxRetries: 2, backoff: { type: 'fixed', delay: 2000 } })
orders.execute(async job => {
  await new Promise(resolve => setTimeout(resolve, 50 + Math.random() * 400))
  if (job.payload.sku.endsWith('7')) throw new Error(`SKU ${job.payload.sku} is out of stock`)
  return { total: job.payload.quantity * 12.5 }
})
const emails = new Queue<{ to: string }, { sent: boolean }>({ storage, name: 'emails', concurrency: 2, maxRetries: 1 })
emails.execute(async job => {
  await new Promise(resolve => setTimeout(resolve, 100 + Math.random() * 300))
  if (job.payload.to.startsWith('bounce')) throw new TypeError(`mailbox ${job.payload.to} does not exist`)
  return { sent: true }
})
const reports = new Producer<{ month: number }, unknown>({ storage, name: 'reports' })
await Promise.all([orders.start(), emails.start(), reports.start()])
for (let month = 1; month <= 3; month++) await reports.enqueue(`report-2026-${month}`, { month })

let n = 0
const timer = setInterval(() => {
  n++
  const sku = `sku-${Math.floor(Math.random() * 60)}`
  const id = `order-${n}`
  if (n % 10 === 0) {
    orders.enqueueAndWait(id, { sku, quantity: n % 5 + 1 }, { timeout: 10_000 })
      .then(r => console.log(`rpc ${id} -> ${r.total}`), (err: Error) => console.log(`rpc ${id} failed: ${err.message}`))
  } else {
    orders.enqueue(id, { sku, quantity: n % 5 + 1 }).catch(err => console.error(err))
  }
  if (n % 3 === 0) emails.enqueue(`email-${n}`, { to: n % 9 === 0 ? `bounce-${n}@example.com` : `user-${n}@example.com` }).catch(err => console.error(err))
}, 200)
console.log(`live queues in ${dir}: watch them with  npx relayq dashboard --url file://${dir}  (Ctrl-C stops)`)

process.once('SIGINT', () => {
  clearInterval(timer)
  Promise.all([orders.stop(), emails.stop(), reports.stop()]).then(() => storage.disconnect()).catch(err => console.error(err))
})
