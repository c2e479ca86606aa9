// Healthy clients of the slow-consumer scenario: `clients` socket.io-client sockets
// (role "healthy") in "room"; the first one asks the server for the broadcast
// ("broadcast" (n, size)), and every client checks that it gets "msg" 0..n-1, in order.
//
// config: { url, clients, n, size, limit }
// holds:  "connected" (all connected; run.py starts the other clients, samples, says go);
// stdout: "@mark first" at the first delivery, "@mark complete" once every client has all
//         n (or "@mark gave_up" at the deadline).
// RESULT: { clients, connected, complete (clients with all n), in_order (clients that never
//           saw a gap or a repeat), received: [...], completion_ms: {p50, max}, first_ms,
//           disconnects: {reason: n}, connect_errors }

const L = require("./lib");
const { cfg } = L;

async function main() {
  const clients = cfg.clients || 20;
  const n = cfg.n || 5000;
  const size = cfg.size || 1024;
  const state = [];
  const disconnects = {};
  let t0 = null;
  let first = null;
  let done = 0;
  let finish = null;
  const finished = new Promise((r) => { finish = r; });
  const conn = await L.connectMany(clients, 10, { auth: { role: "healthy" } }, (s, i) => {
    const st = { received: 0, next: 0, inOrder: true, badPayload: 0, doneAt: null };
    state[i] = st;
    s.on("msg", (seq, payload) => {
      if (first === null && t0 !== null) {
        first = L.now();
        L.mark("first");
      }
      if (seq !== st.next) st.inOrder = false;
      if (typeof payload !== "string" || payload.length !== size) st.badPayload++;
      st.next = seq + 1;
      st.received++;
      if (st.received === n) {
        st.doneAt = L.now();
        done++;
        if (done === clients) finish();
      }
    });
    s.on("disconnect", (reason) => {
      if (reason !== "io client disconnect") L.countInto(disconnects, reason);
      if (st.doneAt === null) {
        st.doneAt = -1;
        done++;
        if (done === clients) finish();
      }
    });
  });
  if (conn.sockets.length < clients) throw new Error(`only ${conn.sockets.length}/${clients} connected: ${JSON.stringify(conn.errors)}`);
  await L.hold("connected");
  t0 = L.now();
  const ack = await new Promise((resolve) => conn.sockets[0].timeout(10000).emit("broadcast", n, size, (err, a) => resolve(err ? String(err) : a)));
  const limitMs = (cfg.deadline || 120) * 1000;
  const gaveUp = await Promise.race([finished.then(() => false), L.sleep(limitMs).then(() => true)]);
  L.mark(gaveUp ? "gave_up" : "complete");
  const times = state.filter((s) => s && s.doneAt > 0).map((s) => s.doneAt - t0);
  L.closeAll(conn.sockets);
  L.result({
    clients,
    connected: conn.sockets.length,
    trigger_ack: ack,
    complete: state.filter((s) => s && s.received === n).length,
    in_order: state.filter((s) => s && s.inOrder && s.received <= n).length,
    bad_payloads: state.reduce((a, s) => a + (s ? s.badPayload : 0), 0),
    received: state.map((s) => (s ? s.received : 0)),
    completion_ms: L.percentiles(times, [50]),
    first_ms: first === null ? null : +(first - t0).toFixed(1),
    gave_up: gaveUp,
    disconnects,
    connect_errors: conn.errors,
  });
}

L.run(main);
