// A graphql-transport-ws client for runEvents (docs/live-updates.md): the token goes in
// connection_init (browsers cannot set WebSocket headers); a dropped socket reconnects
// with back-off and each subscription resumes from the last cursor it received, so
// nothing is lost in between. No polling anywhere.

import { OPERATIONS } from "./api.js";

const MAX_DELAY_MS = 8000;

export class Live {
  /** onState("connecting" | "live" | "reconnecting" | "off") drives the header badge. */
  constructor(onState) {
    this.onState = onState;
    this.subs = new Map();
    this.nextId = 1;
    this.delay = 0;
    this.ws = null;
    this.ready = false;
    this.token = null;
  }

  start(token) {
    this.stop();
    this.token = token;
    this.onState("connecting");
    this.connect();
  }

  stop() {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    ws?.close(1000);
    this.subs.clear();
    this.onState("off");
  }

  connect() {
    const ws = new WebSocket(`${location.origin.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => this.send({ type: "connection_init", payload: { Authorization: `Bearer ${this.token}` } });
    ws.onmessage = (message) => this.receive(JSON.parse(message.data));
    ws.onclose = () => {
      if (this.ws !== ws) return; // stopped, or replaced
      this.ws = null;
      this.ready = false;
      this.onState("reconnecting");
      this.delay = Math.min(this.delay ? this.delay * 2 : 250, MAX_DELAY_MS);
      this.timer = setTimeout(() => this.connect(), this.delay * (0.75 + Math.random() / 2));
    };
  }

  send(message) {
    this.ws?.send(JSON.stringify(message));
  }

  receive(message) {
    const sub = this.subs.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.ready = true;
        this.delay = 0;
        this.onState("live");
        for (const [id, s] of this.subs) this.open(id, s);
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next":
        if (!sub) break;
        if (message.payload.errors?.length) this.fail(message.id, message.payload.errors[0]);
        else sub.onNext(message.payload.data);
        break;
      case "error":
        this.fail(message.id, message.payload[0]);
        break;
      case "complete": // the server ended a stream we still want: say so, the owner resumes
        if (sub) this.fail(message.id, { message: "subscription ended", extensions: { code: "COMPLETE" } });
        break;
    }
  }

  fail(id, error) {
    const sub = this.subs.get(id);
    this.subs.delete(id);
    sub?.onError({ message: error.message, code: error.extensions?.code });
  }

  open(id, sub) {
    const payload = { query: OPERATIONS[sub.name], operationName: sub.name, variables: sub.variables() };
    this.send({ id, type: "subscribe", payload });
  }

  /**
   * Subscribe to operation `name`; `variables()` is asked again on every (re)subscribe,
   * so it returns the latest cursor. Returns a function that ends the subscription.
   */
  subscribe(name, variables, onNext, onError) {
    const id = String(this.nextId++);
    const sub = { name, variables, onNext, onError };
    this.subs.set(id, sub);
    if (this.ready) this.open(id, sub);
    return () => {
      if (this.subs.delete(id) && this.ready) this.send({ id, type: "complete" });
    };
  }
}
