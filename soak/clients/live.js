// After the abrupt scenario: `clients` new sockets (role "live") connect, the first asks
// for a broadcast of `n` messages, and each must get all of them, in order.
//
// config: { url, clients, n, size }
// RESULT: { clients, connected, complete, received: [...], disconnects, connect_errors }

const L = require("./lib");
const { cfg } = L;

async function main() {
  const clients = cfg.clients || 5;
  const n = cfg.n || 3;
  const size = cfg.size || 100;
  const got = [];
  const disconnects = {};
  const conn = await L.connectMany(clients, clients, { auth: { role: "live" } }, (s, i) => {
    got[i] = { received: 0, inOrder: true };
    s.on("msg", (seq) => {
      if (seq !== got[i].received) got[i].inOrder = false;
      got[i].received++;
    });
    s.on("disconnect", (reason) => {
      if (reason !== "io client disconnect") L.countInto(disconnects, reason);
    });
  });
  let ack = null;
  if (conn.sockets.length) {
    ack = await new Promise((resolve) => conn.sockets[0].timeout(10000).emit("broadcast", n, size, (err, a) => resolve(err ? String(err) : a)));
    const deadline = L.now() + 10000;
    while (L.now() < deadline && got.some((g) => g && g.received < n)) await L.sleep(20);
  }
  L.closeAll(conn.sockets);
  L.result({
    clients,
    connected: conn.sockets.length,
    trigger_ack: ack,
    complete: got.filter((g) => g && g.received === n && g.inOrder).length,
    received: got.map((g) => (g ? g.received : 0)),
    disconnects,
    connect_errors: conn.errors,
  });
}

L.run(main);
