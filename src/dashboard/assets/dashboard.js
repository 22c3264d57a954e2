// relayq dashboard client: live refresh (Server-Sent Events, polling as a fallback, paused while
// the tab is hidden), the rate chart, and actions confirmed by a dry-run count. Everything it
// inserts is either text (textContent) or HTML the server rendered and escaped.
/* global location, EventSource, Element, HTMLInputElement, HTMLFormElement */
'use strict';
(function () {
  const body = document.body
  const base = body.dataset.base || ''
  const csrf = (document.querySelector('meta[name="relayq-csrf"]') || {}).content || ''
  const live = document.getElementById('live')
  const status = document.getElementById('live-status')
  const dialog = document.getElementById('confirm')
  let source = null
  let pollTimer = null
  let failures = 0
  let pendingRefresh = false
  let chart = null

  function setStatus (text, cls) {
    if (!status) return
    status.textContent = text
    status.className = 'live ' + (cls || '')
  }

  // ---- live region -------------------------------------------------------------------------
  function busy () {
    return (dialog && dialog.open) || document.querySelector('input.select:checked') !== null
  }

  async function refresh () {
    if (!live) return
    if (busy()) { pendingRefresh = true; return }
    pendingRefresh = false
    let self = body.dataset.self || (location.pathname + location.search)
    // Only a path of this origin (never `//host`): the answer is inserted as HTML.
    if (!/^\/(?!\/)/.test(self)) self = location.pathname
    const res = await fetch(self + (self.includes('?') ? '&' : '?') + 'fragment=1', { credentials: 'same-origin' })
    if (!res.ok) return
    const version = res.headers.get('x-relayq-version')
    live.innerHTML = await res.text()
    if (version) live.dataset.version = version
    body.dispatchEvent(new CustomEvent('relayq:refreshed'))
  }

  function onSnapshot (message) {
    if (message.series) drawChart(message.series)
    if (live && message.version !== live.dataset.version) {
      refresh().catch(function () {})
    }
  }

  function startStream () {
    stopLive()
    if (typeof EventSource !== 'function' || failures >= 3) return startPolling()
    let opened = false
    source = new EventSource(body.dataset.events, { withCredentials: true })
    source.addEventListener('open', function () { opened = true; failures = 0; setStatus('live', 'on') })
    source.addEventListener('snapshot', function (e) { onSnapshot(JSON.parse(e.data)) })
    source.addEventListener('error', function () {
      // A stream that never opened (a proxy that buffers or refuses it): poll at once. One that
      // dropped: the browser reconnects by itself; after three failures in a row, poll instead.
      if (source && source.readyState !== EventSource.OPEN) {
        failures = opened ? failures + 1 : 3
        setStatus('reconnecting…', 'off')
        if (failures >= 3) startPolling()
      }
    })
  }

  function startPolling () {
    stopLive()
    setStatus('polling', 'on')
    const tick = function () {
      fetch(base + '/api/overview', { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.json() : null })
        .then(function (m) { if (m) onSnapshot(m) })
        .catch(function () { setStatus('offline', 'off') })
    }
    tick()
    pollTimer = setInterval(tick, 3000)
  }

  function stopLive () {
    if (source) { source.close(); source = null }
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null }
  }

  document.addEventListener('visibilitychange', function () {
    if (document.hidden) {
      stopLive()
      setStatus('paused (tab hidden)', 'off')
    } else {
      startStream()
    }
  })

  // ---- chart -------------------------------------------------------------------------------
  function drawChart (series) {
    const el = document.getElementById('chart')
    const UPlot = window.uPlot
    if (!el || typeof UPlot !== 'function') return
    // The last 30 minutes as bars; a minute the server did not sample has no bar (null), not a zero.
    const at = new Map(series.t.map(function (t, i) { return [t / 1000, i] }))
    const end = Math.max(Math.floor(Date.now() / 60000) * 60, series.t.length ? series.t[series.t.length - 1] / 1000 : 0)
    const data = [[], [], []]
    for (let m = end - 29 * 60; m <= end; m += 60) {
      const i = at.get(m)
      data[0].push(m)
      data[1].push(i === undefined ? null : series.processed[i])
      data[2].push(i === undefined ? null : series.failed[i])
    }
    if (chart) { chart.setData(data); return }
    const bars = function (align) { return UPlot.paths.bars({ size: [0.4, 24], align }) }
    chart = new UPlot({
      width: Math.max(300, el.clientWidth || 600),
      height: 180,
      series: [
        {},
        { label: 'processed / min', stroke: '#2e7d32', fill: 'rgba(46, 125, 50, 0.55)', paths: bars(-1), points: { show: false } },
        { label: 'failed / min', stroke: '#c62828', fill: 'rgba(198, 40, 40, 0.6)', paths: bars(1), points: { show: false } }
      ],
      axes: [{}, { size: 60 }],
      scales: {
        // Half a minute of margin on each side: the first and the current minute's bars show whole.
        x: { time: true, range: function (u, min, max) { return [min - 30, max + 30] } },
        y: { range: function (u, min, max) { return [0, Math.max(1, max)] } }
      }
    }, data, el)
  }

  // ---- actions -----------------------------------------------------------------------------
  async function post (path, payload) {
    const res = await fetch(base + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-relayq-csrf': csrf },
      body: JSON.stringify(payload)
    })
    const answer = await res.json().catch(function () { return { error: res.statusText } })
    if (!res.ok) throw new Error(answer.error || ('HTTP ' + res.status))
    return answer
  }

  function text (id, value) {
    const el = document.getElementById(id)
    if (el) el.textContent = value
  }

  const VERBS = { retry: 'Retry', remove: 'Delete', cancel: 'Cancel', promote: 'Promote', purge: 'Delete', pause: 'Pause', resume: 'Resume' }

  function describe (action, queue, count, scope) {
    if (action === 'pause') return 'Pause queue "' + queue + '"? ' + count + ' waiting job' + (count === 1 ? '' : 's') + ' will not be claimed until it is resumed; running jobs finish.'
    if (action === 'resume') return 'Resume queue "' + queue + '"? Consumers start claiming its ' + count + ' waiting job' + (count === 1 ? '' : 's') + ' at once.'
    const n = count.toLocaleString('en-US')
    return VERBS[action] + ' ' + n + ' job' + (count === 1 ? '' : 's') + ' of queue "' + queue + '"' + (scope ? ' (' + scope + ')' : '') + '?'
  }

  let current = null

  async function confirmAction (action, queue, payload, scope) {
    if (!dialog) return
    current = null
    const okButton = document.getElementById('confirm-ok')
    const progress = document.getElementById('confirm-progress')
    progress.hidden = true
    okButton.disabled = true
    okButton.hidden = false
    text('confirm-text', 'Counting…')
    text('confirm-command', '')
    text('confirm-status', '')
    dialog.showModal()
    const path = '/api/queues/' + encodeURIComponent(queue) + '/actions/' + action
    try {
      const dry = await post(path, Object.assign({}, payload, { dryRun: true }))
      text('confirm-text', describe(action, queue, dry.count, scope))
      text('confirm-command', dry.command)
      if (dry.count === 0 && action !== 'pause' && action !== 'resume') {
        text('confirm-status', 'Nothing to do.')
        okButton.hidden = true
        return
      }
      okButton.disabled = false
      current = { path, payload }
    } catch (err) {
      text('confirm-text', 'Cannot do that: ' + err.message)
    }
  }

  async function runCurrent () {
    if (!current) return
    const okButton = document.getElementById('confirm-ok')
    okButton.disabled = true
    const answer = await post(current.path, current.payload).catch(function (err) { text('confirm-status', 'Failed: ' + err.message); return null })
    current = null
    if (!answer) return
    text('confirm-command', answer.command || (answer.task && answer.task.command) || '')
    if (!answer.task) { closeDialog(); return }
    const progress = document.getElementById('confirm-progress')
    progress.hidden = false
    progress.max = Math.max(1, answer.task.total)
    let task = answer.task
    dialog.dataset.task = task.id
    while (!task.done) {
      progress.value = task.count
      text('confirm-status', task.count.toLocaleString('en-US') + ' of ' + task.total.toLocaleString('en-US') + ' done…')
      await new Promise(function (resolve) { setTimeout(resolve, 250) })
      const res = await fetch(base + '/api/tasks/' + encodeURIComponent(task.id), { credentials: 'same-origin' })
      if (!res.ok) break
      task = await res.json()
    }
    delete dialog.dataset.task
    progress.value = task.count
    text('confirm-status', task.error
      ? 'Failed after ' + task.count + ': ' + task.error
      : (task.stopped ? 'Stopped: ' : 'Done: ') + task.count.toLocaleString('en-US') + ' changed' + (task.skipped ? ', ' + task.skipped + ' skipped' : '') + '.')
    document.querySelectorAll('input.select:checked').forEach(function (box) { box.checked = false })
    refresh().catch(function () {})
  }

  function closeDialog () {
    const task = dialog.dataset.task
    if (task) post('/api/tasks/' + encodeURIComponent(task) + '/stop', {}).catch(function () {})
    current = null
    dialog.close()
    refresh().catch(function () {})
  }

  document.addEventListener('click', function (e) {
    const target = e.target
    if (!(target instanceof Element)) return
    if (target.id === 'confirm-ok') { e.preventDefault(); runCurrent(); return }
    if (target.id === 'confirm-cancel') { e.preventDefault(); closeDialog(); return }
    if (target.classList.contains('select-all')) {
      document.querySelectorAll('input.select').forEach(function (box) { box.checked = target.checked })
      return
    }
    const button = target.closest('button.act')
    if (!button) return
    const d = button.dataset
    let payload = {}
    let scope = ''
    if (d.scope === 'selection') {
      const ids = Array.from(document.querySelectorAll('input.select:checked')).map(function (box) { return box.value })
      if (ids.length === 0) { setStatus('select jobs first', 'off'); return }
      payload = { ids }
      scope = 'selected'
    } else if (d.scope === 'ids') {
      payload = { ids: JSON.parse(d.ids) }
    } else if (d.scope === 'state') {
      payload = { selector: d.group ? { state: d.state, errorGroup: d.group } : { state: d.state } }
      scope = 'every ' + d.state + ' job' + (d.group ? ' of failure group ' + d.group : '')
    }
    confirmAction(d.action, d.queue, payload, scope)
  })

  if (dialog) {
    dialog.addEventListener('close', function () {
      if (pendingRefresh) refresh().catch(function () {})
    })
  }

  document.addEventListener('change', function (e) {
    if (e.target instanceof HTMLInputElement && e.target.classList.contains('select') && pendingRefresh && !busy()) refresh().catch(function () {})
  })

  const UNITS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 }
  document.addEventListener('submit', function (e) {
    const form = e.target
    if (!(form instanceof HTMLFormElement) || !form.classList.contains('purge')) return
    e.preventDefault()
    const state = form.elements.namedItem('state').value
    const age = form.elements.namedItem('olderThan').value.trim()
    const payload = { state }
    if (age !== '') {
      const m = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(age)
      if (!m) { setStatus('older than: a number and a unit (ms, s, m, h, d)', 'off'); return }
      payload.olderThan = Number(m[1]) * UNITS[m[2] || 'ms']
    }
    confirmAction('purge', form.dataset.queue, payload, 'purge every ' + state + ' job' + (age ? ' older than ' + age : ''))
  })

  // ---- start -------------------------------------------------------------------------------
  const chartEl = document.getElementById('chart')
  if (chartEl && chartEl.dataset.series) drawChart(JSON.parse(chartEl.dataset.series))
  if (document.hidden) setStatus('paused (tab hidden)', 'off')
  else startStream()
})()
