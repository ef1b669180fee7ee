import net from "node:net";
import tls from "node:tls";
import util from "node:util";

// The edge's TLS without Node's per-connection JavaScript: a net.Server and a tls.TLSSocket cost about
// 30 µs of JavaScript per connection (two sockets with their streams, listeners and garbage) on top of
// OpenSSL's own work, which makes a Node TLS server do about 0.7× nginx's handshakes per CPU-second.
// Here the listening socket is libuv's TCP handle, and Node's C++ TLS stream (TLSWrap, what a TLSSocket
// runs on) is put directly on each accepted handle, with a few callbacks; a JavaScript socket is made only
// when the client sends its first request, as nginx allocates its request state only then. A connection
// that only handshakes (a TLS probe, a served-certificate check, a preconnect the browser never uses)
// costs no stream at all.
//
// These are Node's internal bindings (process.binding's allow-list: tcp_wrap, tls_wrap, stream_wrap),
// used the way lib/net.js and lib/_tls_wrap.js use them in Node 20. `nativeTls` is undefined when they
// are missing or not shaped as expected; the edge then uses net.Server and tls.TLSSocket, as it does
// with PORTCULLIS_EDGE_TLS=portable.

/** Node's C++ TLS stream (src/crypto/crypto_tls.cc), with the callbacks it calls. */
export type TlsWrap = {
  receive(data: Buffer): void;
  readStart(): number;
  readStop(): number;
  setALPNProtocols(wire: Buffer): void;
  getALPNNegotiatedProtocol(): string | false | undefined;
  getProtocol(): string | undefined;
  destroySSL(): void;
  /** Called, when it is a function, as a handshake starts; the edge leaves it unset (OpenSSL refuses renegotiation). */
  onhandshakestart?: (now: number) => void;
  onhandshakedone: () => void;
  onerror: (err: Error) => void;
  onread: (arrayBuffer: ArrayBuffer) => void;
  onclienthello: () => void;
  oncertcb: () => void;
  onnewsession: () => void;
  onkeylog: () => void;
  // What lib/_tls_wrap.js's TLSWrap.prototype.close and its getpeername/setNoDelay proxies read.
  _parent: TcpHandle;
  _secureContext: tls.SecureContext;
};

/** An accepted connection's libuv handle (TCPWrap), as a net.Socket would hold it in _handle. */
export type TcpHandle = {
  onread: (arrayBuffer: ArrayBuffer) => void;
  readStart(): number;
  readStop(): number;
  close(callback?: () => void): void;
  getpeername(out: { address?: string; port?: number }): number;
  setNoDelay(enable: boolean): number;
};

type TcpServerHandle = {
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  listen(backlog: number): number;
  close(callback?: () => void): void;
  onconnection: (status: number, client: TcpHandle | undefined) => void;
};

type Bindings = {
  TCP: new (type: number) => TcpServerHandle;
  serverType: number;
  wrap(handle: TcpHandle, context: unknown, isServer: boolean, hasActiveWrite: boolean): TlsWrap;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
};

function load(): Bindings | undefined {
  try {
    // TLSWrap's close and its getpeername/setNoDelay proxies are added by lib/_tls_wrap.js, which tls loads.
    if (typeof tls.TLSSocket !== "function") return undefined;
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tlsWrap = binding("tls_wrap");
    const streamWrap = binding("stream_wrap");
    const tcpWrap = binding("tcp_wrap");
    const TCP = tcpWrap.TCP as Bindings["TCP"] | undefined;
    const serverType = (tcpWrap.constants as Record<string, unknown> | undefined)?.SERVER;
    const tcpProto = (TCP as { prototype?: Record<string, unknown> } | undefined)?.prototype;
    const proto = (tlsWrap.TLSWrap as { prototype?: Record<string, unknown> } | undefined)?.prototype;
    const state = streamWrap.streamBaseState;
    const ok =
      typeof tlsWrap.wrap === "function" &&
      state instanceof Int32Array &&
      typeof streamWrap.kReadBytesOrError === "number" &&
      typeof streamWrap.kArrayBufferOffset === "number" &&
      proto !== undefined &&
      ["receive", "readStart", "readStop", "setALPNProtocols", "getALPNNegotiatedProtocol", "getProtocol", "destroySSL", "close", "getpeername"].every((m) => typeof proto[m] === "function") &&
      typeof serverType === "number" &&
      tcpProto !== undefined &&
      ["bind", "bind6", "listen", "close", "readStart", "readStop", "getpeername", "setNoDelay"].every((m) => typeof tcpProto[m] === "function");
    if (!ok) return undefined;
    return {
      TCP: TCP!,
      serverType,
      wrap: tlsWrap.wrap as Bindings["wrap"],
      state,
      kReadBytesOrError: streamWrap.kReadBytesOrError as number,
      kArrayBufferOffset: streamWrap.kArrayBufferOffset as number,
    };
  } catch {
    return undefined;
  }
}

const bindings = load();

export const nativeTls = bindings && {
  /**
   * Listens on address:port (an IP address) as net.Server does (backlog 511, SO_REUSEADDR, dual-stack on
   * "::"), and hands each accepted connection's handle to onConnection. Throws what net.Server would
   * emit as 'error' (code EADDRINUSE, EACCES…).
   */
  listen(address: string, port: number, onConnection: (client: TcpHandle) => void): NativeServer {
    const handle = new bindings.TCP(bindings.serverType);
    const fail = (err: number, syscall: string) => {
      handle.close();
      const code = util.getSystemErrorName(err);
      throw Object.assign(new Error(`${syscall} ${code} ${address}:${port}`), { code, errno: err, syscall, address, port });
    };
    const bound = net.isIPv6(address) ? handle.bind6(address, port, 0) : handle.bind(address, port);
    if (bound) fail(bound, "bind");
    const listening = handle.listen(511);
    if (listening) fail(listening, "listen");
    // An accept error (EMFILE, ENFILE…) loses that one connection, as net.Server does once it has emitted it.
    handle.onconnection = (status, client) => {
      if (status === 0 && client) onConnection(client);
    };
    return { close: (callback) => handle.close(callback) };
  },
  /** Starts TLS as a server on an accepted connection's handle; its reading must be stopped. */
  wrap(handle: TcpHandle, context: tls.SecureContext): TlsWrap {
    const ssl = bindings.wrap(handle, (context as unknown as { context: unknown }).context, true, false);
    ssl._parent = handle;
    ssl._secureContext = context;
    return ssl;
  },
  /** The peer's address and port, as net.Socket's remoteAddress and remotePort. */
  peer(handle: TcpHandle): { address?: string; port?: number } {
    const out: { address?: string; port?: number } = {};
    handle.getpeername(out);
    return out;
  },
  /**
   * The bytes of the read that called a handle's onread, or null at the end of the stream or on an error,
   * or undefined for a read of nothing. The Buffer is the read's own memory: it may be kept.
   */
  readResult(arrayBuffer: ArrayBuffer): Buffer | null | undefined {
    const n = bindings.state[bindings.kReadBytesOrError];
    if (n < 0) return null;
    if (n === 0) return undefined;
    return Buffer.from(arrayBuffer, bindings.state[bindings.kArrayBufferOffset], n);
  },
};

export type NativeServer = { close(callback: () => void): void };

/** ALPN protocol names in the wire format of RFC 7301 (each name preceded by its length). */
export function alpnWire(protocols: string[]): Buffer {
  return Buffer.concat(protocols.flatMap((p) => [Buffer.from([Buffer.byteLength(p)]), Buffer.from(p)]));
}
