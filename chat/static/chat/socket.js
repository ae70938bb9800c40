// A WebSocket that reconnects by itself, with exponential backoff and jitter.
const MAX_DELAY_MS = 10_000;
const CREDENTIALS_ENDED = 4401; // logout, password change, key revoked (chat.socket.revocation)
const TOO_MANY_SOCKETS = 4429; // CHAT_MAX_SOCKETS_PER_USER: retry, but slowly
const SERVICE_RESTART = 4503; // the server process stops (chat.socket.consumer.close_all)

export class ChatSocket {
  /** `handlers`: onFrame(frame), onOpen(), onState("open" | "closed"). */
  constructor(path, handlers) {
    this.url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
    this.handlers = handlers;
    this.attempt = 0;
    this.leaving = false;
    this.timer = null;
    window.addEventListener("pagehide", () => {
      this.leaving = true;
      this.ws?.close(1000);
    });
    window.addEventListener("online", () => this.reconnectNow());
    this.connect();
  }

  connect() {
    this.timer = null;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.handlers.onState("open");
      this.handlers.onOpen();
    });
    ws.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object") this.handlers.onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws || this.leaving) return;
      if (event.code === CREDENTIALS_ENDED) {
        location.reload(); // logged out elsewhere: the login page; else the page again
        return;
      }
      this.handlers.onState("closed");
      if (event.code === TOO_MANY_SOCKETS) this.attempt = Math.max(this.attempt, 5);
      // A stopping server hands its replies over: come back at once (another process
      // behind the proxy, or the restarted one); a refusal after that backs off as usual.
      if (event.code === SERVICE_RESTART && this.attempt === 0) {
        this.attempt = 1;
        this.connect();
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const ceiling = Math.min(MAX_DELAY_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), ceiling / 2 + Math.random() * (ceiling / 2));
  }

  reconnectNow() {
    if (this.ws?.readyState === WebSocket.OPEN || this.timer === null) return;
    clearTimeout(this.timer);
    this.connect();
  }

  /** Resolves true once the socket is open, or false after `timeoutMs`. */
  whenOpen(timeoutMs) {
    if (this.isOpen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (this.isOpen || Date.now() - started > timeoutMs) {
          clearInterval(poll);
          resolve(this.isOpen);
        }
      }, 50);
    });
  }

  get isOpen() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Send one JSON frame; false when the socket is not open (the caller keeps the text). */
  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }
}
