// Bounded waits shared by the JavaScript test suites (js-client/test, tests/socketio): every
// wait ends by itself, and clearTimers() drops the timers of waits nobody awaits any more so
// that node can exit at once.

export const WAIT_MS = 3000;

const timers = new Set();

// Rejects with `label` if `promise` has not settled within `ms`.
export function withTimeout(promise, label, ms = WAIT_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
        timers.add(timer);
    });
    return Promise.race([promise, timeout]).finally(() => {
        clearTimeout(timer);
        timers.delete(timer);
    });
}

export function clearTimers() {
    for (const t of timers) clearTimeout(t);
    timers.clear();
}

// Resolves with the argument list of the next `event` on `emitter`.
export function next(emitter, event, ms = WAIT_MS) {
    let handler;
    const p = new Promise((resolve) => {
        handler = (...args) => resolve(args);
        emitter.once(event, handler);
    });
    return withTimeout(p, `event "${event}"`, ms).finally(() => emitter.off(event, handler));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
