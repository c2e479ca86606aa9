// Churn: `cycles` Socket.IO connect/disconnect cycles (connect, then close at once) over
// one transport, at most `concurrency` in flight.
//
// config: { url, transport: "websocket"|"polling", cycles, warm, concurrency, localAddresses }
// holds:  "warm" after the first `warm` cycles (run.py samples the server's RSS there),
//         "end" after the last one (every client closed).
// RESULT: { cycles, ok, errors, elapsed_s, cycles_per_s }

const L = require("./lib");
const { cfg } = L;

async function cycles(n, concurrency, state) {
  let next = 0;
  const addrs = (cfg.transport || "websocket") === "websocket" ? (cfg.localAddresses || []) : [];
  async function worker() {
    while (next < n) {
      const i = state.started++;
      next++;
      const extra = addrs.length ? { localAddress: addrs[i % addrs.length] } : {};
      try {
        const s = await L.connectOne(extra);
        await new Promise((resolve) => {
          s.once("disconnect", resolve);
          s.close();
          setTimeout(resolve, 1000);
        });
        state.ok++;
      } catch (err) {
        L.countInto(state.errors, String((err && err.message) || err));
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

async function main() {
  const total = cfg.cycles || 1000;
  const warm = Math.min(cfg.warm || 0, total);
  const concurrency = cfg.concurrency || 20;
  const state = { started: 0, ok: 0, errors: {} };
  const t0 = L.now();
  if (warm) {
    await cycles(warm, concurrency, state);
    await L.hold("warm");
  }
  const t1 = L.now();
  await cycles(total - warm, concurrency, state);
  const t2 = L.now();
  await L.hold("end");
  L.result({
    cycles: total,
    ok: state.ok,
    errors: state.errors,
    elapsed_s: +((t2 - t0) / 1000).toFixed(3),
    cycles_per_s: +(((total - warm) * 1000) / Math.max(t2 - t1, 1)).toFixed(1),
  });
}

L.run(main);
