// The official socket.io-client through a load balancer, with nothing but
// `withCredentials: true` (its cookie jar then keeps the balancer's sticky cookie).
//
//   node multi_sticky.js '<config-json>'
//
// config: { url, transports: [...], clients: n, acks: n, upgrade: bool }
// Like a browser, each client first loads the page (GET /, through the balancer), which
// creates its Flask session, and sends that session cookie with the handshake (only
// the session cookie: the balancer's cookie comes with the handshake's answer).
// Opens `clients` sockets at once; each waits for the upgrade when `upgrade` is set,
// then sends `acks` "my event" (the demo acks the session's new count), one after the
// other. Prints ONE JSON line: { clients: [{ acks, transport, disconnects, errors,
// cookies }] } where `cookies` is what the client's jar holds (to tell which node it
// stuck to) and `disconnects` lists every disconnection before the script closed it.
// Every wait is bounded; any failure prints { error } and exits 1.

const { io } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const WAIT = 15000;

function bounded(promise, what, ms = WAIT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function sessionCookie() {
  const res = await bounded(fetch(cfg.url + "/"), "GET /");
  if (res.status !== 200) throw new Error(`GET / answered ${res.status}`);
  await res.text();
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith("session="));
  if (!cookie) throw new Error("GET / set no session cookie");
  return cookie.split(";")[0];
}

async function one(i) {
  const session = await sessionCookie();
  const s = io(cfg.url, {
    transports: cfg.transports, withCredentials: true, forceNew: true, reconnection: false,
    timeout: WAIT, extraHeaders: { cookie: session },
  });
  const result = { acks: [], disconnects: [], errors: [] };
  s.on("disconnect", (reason) => result.disconnects.push(reason));
  s.on("connect_error", (err) => result.errors.push(err.message));
  try {
    await bounded(new Promise((resolve, reject) => {
      s.once("connect", resolve);
      s.once("connect_error", reject);
    }), `connect of client ${i}`);
    if (cfg.upgrade && s.io.engine.transport.name !== "websocket") {
      await bounded(new Promise((resolve) => s.io.engine.once("upgrade", resolve)),
                    `upgrade of client ${i}`);
    }
    for (let k = 0; k < cfg.acks; k++) {
      const n = await bounded(new Promise((resolve) => s.emit("my event", resolve)),
                              `ack ${k} of client ${i}`);
      result.acks.push(n);
    }
    result.transport = s.io.engine.transport.name;
    result.cookies = {};
    for (const [name, cookie] of s.io.engine._cookieJar.cookies) {
      result.cookies[name] = cookie.value;
    }
    return result;
  } finally {
    const seen = result.disconnects.slice();
    s.close();
    result.disconnects = seen;
  }
}

Promise.all(Array.from({ length: cfg.clients }, (_, i) => one(i)))
  .then((clients) => {
    console.log(JSON.stringify({ clients }));
    process.exit(0);
  })
  .catch((err) => {
    console.log(JSON.stringify({ error: String(err && err.message || err) }));
    process.exit(1);
  });
