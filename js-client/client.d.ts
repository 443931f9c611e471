// Types of client.js, hunchensocket's Socket.IO client. Written by hand to match the shapes of
// socket.io-client's own types, so code typed against one compiles against the other.
//
// One difference: binary data received from the server is always an ArrayBuffer (socket.io-client
// gives a Buffer in Node). Binary data sent may be an ArrayBuffer, any typed array, a DataView or
// a Blob, anywhere in the arguments.

/** A map from event names to listener signatures. */
export interface EventsMap {
    [event: string]: any;
}
/** The default map: any event with any arguments. */
export interface DefaultEventsMap {
    [event: string]: (...args: any[]) => void;
}
export type EventNames<Map extends EventsMap> = keyof Map & (string | symbol);
export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;

type Last<T extends any[]> = T extends [...infer _H, infer L] ? L : never;
type AllButLast<T extends any[]> = T extends [...infer H, any] ? H : never;
type FirstArg<T> = T extends (arg: infer A, ...rest: any[]) => any ? A : never;
/** The first argument of an ack callback, without the leading error of a timeout callback. */
type AckResult<T> = T extends (err: Error, arg: infer A, ...rest: any[]) => any ? A : FirstArg<T>;
/** Turns an ack callback `(...args) => void` into the error-first `(err, ...args) => void`. */
type WithTimeoutAck<Ev> = Ev extends (...args: infer P) => infer R
    ? Last<P> extends (...a: infer A) => infer AR
        ? (...args: [...AllButLast<P>, (err: Error, ...a: A) => AR]) => R
        : Ev
    : Ev;
type DecorateAcknowledgements<Map> = { [E in keyof Map]: WithTimeoutAck<Map[E]> };

/** Events every socket may receive, whatever the map says. */
export interface SocketReservedEvents {
    connect: () => void;
    connect_error: (err: Error & { data?: unknown }) => void;
    disconnect: (reason: DisconnectReason, description?: unknown) => void;
}
export type DisconnectReason =
    | "io server disconnect"
    | "io client disconnect"
    | "ping timeout"
    | "transport close"
    | "transport error"
    | "parse error";

/** Events of a Manager. */
export interface ManagerReservedEvents {
    open: () => void;
    error: (err: Error) => void;
    ping: () => void;
    packet: (packet: { type: number; nsp: string; id?: number; data?: unknown }) => void;
    close: (reason: string) => void;
    reconnect_failed: () => void;
    reconnect_attempt: (attempt: number) => void;
    reconnect_error: (err: Error) => void;
    reconnect: (attempt: number) => void;
}

type Listener<Map, Ev> = Ev extends keyof Map ? Map[Ev] : (...args: any[]) => void;

declare class Emitter<Listen extends EventsMap, Reserved extends EventsMap> {
    on<Ev extends EventNames<Listen> | EventNames<Reserved>>(ev: Ev, listener: Listener<Reserved & Listen, Ev>): this;
    once<Ev extends EventNames<Listen> | EventNames<Reserved>>(ev: Ev, listener: Listener<Reserved & Listen, Ev>): this;
    off<Ev extends EventNames<Listen> | EventNames<Reserved>>(ev?: Ev, listener?: Listener<Reserved & Listen, Ev>): this;
    addListener: this["on"];
    removeListener: this["off"];
    removeAllListeners: this["off"];
    listeners<Ev extends EventNames<Listen> | EventNames<Reserved>>(ev: Ev): Listener<Reserved & Listen, Ev>[];
    hasListeners(ev: string): boolean;
    /** Calls the local listeners of `ev`. */
    emitReserved<Ev extends EventNames<Reserved>>(ev: Ev, ...args: Parameters<Reserved[Ev]>): this;
}

/** The Engine.IO connection under a Manager (read-only view). */
export interface Engine {
    /** The Engine.IO session id, once open. */
    readonly id?: string;
    readonly transport: { readonly name: "polling" | "websocket" };
    readonly writable: boolean;
    on(ev: "upgrade", listener: (transport: { name: "websocket" }) => void): this;
    on(ev: string, listener: (...args: any[]) => void): this;
    once(ev: "upgrade", listener: (transport: { name: "websocket" }) => void): this;
    once(ev: string, listener: (...args: any[]) => void): this;
    off(ev?: string, listener?: (...args: any[]) => void): this;
    close(): void;
}

/** Options of the connection (one Manager). */
export interface ManagerOptions {
    /** Path of the server, default "/socket.io". */
    path: string;
    /** Query parameters added to every request. */
    query: Record<string, string | number | boolean> | string | URLSearchParams;
    /** Default ["polling", "websocket"]: polling first, then the upgrade. */
    transports: ("polling" | "websocket")[];
    /** Whether to upgrade from polling to WebSocket, default true. */
    upgrade: boolean;
    /** Default true. */
    reconnection: boolean;
    /** Default Infinity. */
    reconnectionAttempts: number;
    /** First delay in ms, doubled each attempt; default 1000. */
    reconnectionDelay: number;
    /** Default 5000. */
    reconnectionDelayMax: number;
    /** Jitter, 0 to 1; default 0.5. */
    randomizationFactor: number;
    /** Connection timeout in ms (false: none); default 20000. */
    timeout: number | false;
    /** Default true. */
    autoConnect: boolean;
    /** A new Manager even if one exists for this URL. */
    forceNew: boolean;
    /** false: same as forceNew. */
    multiplex: boolean;
    /** The WebSocket constructor; default globalThis.WebSocket (Node 20: --experimental-websocket, or the ws package). */
    WebSocket: new (url: string | URL) => WebSocket;
    /** Headers of the polling requests (browsers refuse the forbidden ones). */
    extraHeaders: Record<string, string>;
    /** Polling requests with credentials (cookies) across origins. */
    withCredentials: boolean;
}

/** Options of one namespace socket. */
export interface SocketOptions {
    /** Sent with the CONNECT packet; a function gets a callback to call with the data. */
    auth: Record<string, unknown> | ((cb: (data: Record<string, unknown>) => void) => void);
    /** Default timeout (ms) of every emit with an ack: its callback then gets an error first. */
    ackTimeout: number;
    /**
     * Emits (not volatile) wait in a queue and are sent one at a time, each again after an ack
     * timeout (`ackTimeout`) or a disconnection, at most `retries` more times; the ack callback
     * then gets an error first. Default 0: no queue.
     */
    retries: number;
}

export declare class Manager<
    ListenEvents extends EventsMap = DefaultEventsMap,
    EmitEvents extends EventsMap = ListenEvents,
> extends Emitter<{}, ManagerReservedEvents> {
    constructor(uri?: string | URL, opts?: Partial<ManagerOptions & SocketOptions>);
    constructor(opts?: Partial<ManagerOptions & SocketOptions>);
    readonly uri: string;
    readonly opts: Partial<ManagerOptions>;
    /** The Engine.IO connection; undefined before the first open(). */
    engine: Engine;
    nsps: Record<string, Socket>;
    _readyState: "opening" | "open" | "closed";
    _reconnecting: boolean;
    open(fn?: (err?: Error) => void): this;
    connect(fn?: (err?: Error) => void): this;
    /** The socket of namespace `nsp` on this connection (made once, then reused). */
    socket(nsp: string, opts?: Partial<SocketOptions>): Socket<ListenEvents, EmitEvents>;
    disconnect(): void;
    close(): void;
    reconnection(): boolean;
    reconnection(v: boolean): this;
    reconnectionAttempts(): number;
    reconnectionAttempts(v: number): this;
    reconnectionDelay(): number;
    reconnectionDelay(v: number): this;
    reconnectionDelayMax(): number;
    reconnectionDelayMax(v: number): this;
    randomizationFactor(): number;
    randomizationFactor(v: number): this;
    timeout(): number | false;
    timeout(v: number | false): this;
}

export declare class Socket<
    ListenEvents extends EventsMap = DefaultEventsMap,
    EmitEvents extends EventsMap = ListenEvents,
> extends Emitter<ListenEvents, SocketReservedEvents> {
    readonly io: Manager<ListenEvents, EmitEvents>;
    /** The socket id of this namespace, while connected. */
    id: string | undefined;
    readonly nsp: string;
    connected: boolean;
    readonly disconnected: boolean;
    /** Whether the socket is (or will try to be) connected: false after disconnect() or a refusal. */
    active: boolean;
    /**
     * Whether the last CONNECT got the previous session back (connection state recovery: same
     * id and rooms, the missed events delivered just before `connect`). With recovery on at the
     * server, listeners receive each stored event's offset (a string) as an extra last argument.
     */
    recovered: boolean;
    auth: SocketOptions["auth"] | undefined;
    /** Emits made while disconnected, sent on (re)connect. */
    sendBuffer: unknown[];
    receiveBuffer: unknown[];

    constructor(io: Manager, nsp: string, opts?: Partial<SocketOptions>);
    connect(): this;
    open(): this;
    disconnect(): this;
    close(): this;
    /** Sends a "message" event. */
    send(...args: any[]): this;
    /** Sends an event; a function as last argument is called with the server's ack. */
    emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): this;
    /** Sends an event and resolves with the first argument of the ack. */
    emitWithAck<Ev extends EventNames<EmitEvents>>(
        ev: Ev,
        ...args: AllButLast<EventParams<EmitEvents, Ev>>
    ): Promise<AckResult<Last<EventParams<EmitEvents, Ev>>>>;
    /** The next emit waits `ms` for its ack: its callback gets an Error first, emitWithAck rejects. */
    timeout(ms: number): Socket<ListenEvents, DecorateAcknowledgements<EmitEvents>>;
    /** The next emit is dropped if it cannot be sent at once. */
    readonly volatile: this;
    compress(compress: boolean): this;

    onAny(listener: (event: string, ...args: any[]) => void): this;
    prependAny(listener: (event: string, ...args: any[]) => void): this;
    offAny(listener?: (event: string, ...args: any[]) => void): this;
    listenersAny(): ((event: string, ...args: any[]) => void)[];
    onAnyOutgoing(listener: (event: string, ...args: any[]) => void): this;
    prependAnyOutgoing(listener: (event: string, ...args: any[]) => void): this;
    offAnyOutgoing(listener?: (event: string, ...args: any[]) => void): this;
    listenersAnyOutgoing(): ((event: string, ...args: any[]) => void)[];
}

/**
 * A socket for the namespace in `uri` (default "/"), on a Manager shared by every io() call for
 * the same origin and path, unless `forceNew` / `multiplex: false` or that namespace is already open.
 */
export declare function io<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents>(
    opts?: Partial<ManagerOptions & SocketOptions>,
): Socket<ListenEvents, EmitEvents>;
export declare function io<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents>(
    uri?: string | URL,
    opts?: Partial<ManagerOptions & SocketOptions>,
): Socket<ListenEvents, EmitEvents>;
export { io as connect };
/** The Socket.IO protocol revision spoken. */
export declare const protocol: 5;
export default io;
