// Room broadcast: `clients` WebSocket sockets (all in "room", joined by the server on
// connection); one of them emits "broadcast" (messages, size); the server emits "msg"
// `messages` times to the room. Measures, from the trigger: the first delivery to any
// client, the last delivery (every client got every message), deliveries/s over that
// span, and the trigger's ack (the server's emit loop finished).
//
// config: { url, clients, messages, size, deflate, localAddresses, concurrency, limit }
// RESULT: { deliveries, expected, deliveries_per_s, first_ms, last_ms, ack_ms,
//           per_client_done_ms: {p50,p99,...}, gen, connect_errors, deflate_negotiated }

const L = require("./lib");
const { cfg } = L;

async function main() {
  const clients = cfg.clients || 1000;
  const messages = cfg.messages || 200;
  const size = cfg.size || 100;
  const limitMs = (cfg.limit || 60) * 1000;

  let total = 0;
  let counting = false;
  let tFirst = null;
  let tLast = null;
  let badPayloads = 0;
  const got = new Int32Array(clients);
  const doneAt = [];
  let disconnects = 0;
  let onAll = null;
  let expectedNow = 0;
  let expectedSize = 1;
  let expectedPerClient = 1;

  const conn = await L.connectMany(clients, cfg.concurrency || 50, (s, i) => {
    s.on("msg", (payload) => {
      if (!counting) return;
      const t = L.now();
      if (tFirst === null) tFirst = t;
      if (typeof payload !== "string" || payload.length !== expectedSize) badPayloads++;
      total++;
      got[i]++;
      if (got[i] === expectedPerClient) doneAt.push(t);
      if (total === expectedNow) {
        tLast = t;
        if (onAll) onAll();
      }
    });
    s.on("disconnect", (reason) => {
      if (reason !== "io client disconnect") {
        disconnects++;
        L.log(`disconnect ${i}: ${reason}`);
      }
    });
  });
  const sockets = conn.sockets;
  if (sockets.length < clients) {
    L.closeAll(sockets);
    throw new Error(`only ${sockets.length}/${clients} connected: ${JSON.stringify(conn.errors)}`);
  }

  // One round: trigger, wait until every client got every message (bounded).
  async function round(n, sz, label) {
    total = 0;
    tFirst = null;
    tLast = null;
    got.fill(0);
    doneAt.length = 0;
    expectedSize = sz;
    expectedPerClient = n;
    expectedNow = n * sockets.length;
    counting = true;
    const all = new Promise((resolve) => { onAll = resolve; });
    if (label) L.mark(`${label}_start`);
    const cpu = L.cpuWindow();
    const t0 = L.now();
    let tAck = null;
    sockets[0].emit("broadcast", n, sz, () => { tAck = L.now(); });
    let timer;
    const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve("timeout"), limitMs); });
    const how = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    if (label) L.mark(`${label}_end`);
    const gen = cpu();
    // the ack may come after the last delivery
    const ackDeadline = L.now() + 5000;
    while (tAck === null && L.now() < ackDeadline) await L.sleep(10);
    counting = false;
    onAll = null;
    return { how, t0, tAck, gen };
  }

  // warm-up: one small broadcast everybody must get (also proves every client is in the room)
  const warm = await round(1, size, null);
  if (warm.how === "timeout") {
    L.log(`warm-up broadcast: only ${total}/${expectedNow} delivered`);
  }
  await L.sleep(500);

  const r = await round(messages, size, "broadcast");
  const expected = messages * sockets.length;
  const end = r.how === "timeout" ? L.now() : tLast;
  const spanMs = end - r.t0;
  const negotiated = L.deflateNegotiated(sockets[1] || sockets[0]);
  const doneRel = doneAt.map((t) => t - r.t0);
  L.closeAll(sockets);
  L.result({
    clients: sockets.length,
    messages,
    size,
    deliveries: total,
    expected,
    complete: total === expected,
    timed_out: r.how === "timeout",
    deliveries_per_s: +(total / (spanMs / 1000)).toFixed(1),
    first_ms: tFirst === null ? null : +(tFirst - r.t0).toFixed(3),
    last_ms: tLast === null ? null : +(tLast - r.t0).toFixed(3),
    ack_ms: r.tAck === null ? null : +(r.tAck - r.t0).toFixed(3),
    per_client_done_ms: L.percentiles(doneRel, [50, 99]),
    warmup_complete: warm.how !== "timeout",
    bad_payloads: badPayloads,
    disconnects,
    gen: r.gen,
    connect_errors: conn.errors,
    deflate_negotiated: negotiated,
  });
}

L.run(main, (cfg.limit || 60) * 2000 + 180000);
