// filter.ts - a proxy-wasm filter written with the AssemblyScript SDK
// (@solo-io/proxy-runtime 0.1.8, AssemblyScript 0.14), built by
// tests/guests_proxywasm/build.sh. Its plugin configuration picks what it
// does besides tagging: "auth" makes an http_call to cluster "auth" and
// lets the request through on 200, answering 401 otherwise.
//   request:  x-as-added: <configuration>, x-as-replace: new, x-as-remove
//             removed, x-as-count (counter as_filter_requests, shared data);
//             x-as-block: answer 403 locally
//   response: x-as-resp: 1
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
  send_local_response, GrpcStatusValues, Headers, HeaderPair, Counter, LogLevelValues, log,
} from "@solo-io/proxy-runtime";
import { get_buffer_bytes, BufferTypeValues } from "@solo-io/proxy-runtime/runtime";

class AsRoot extends RootContext {
  config: string = "";
  requests: Counter | null = null;

  createContext(context_id: u32): Context {
    return new AsFilter(context_id, this);
  }

  // The SDK's own onConfigure passes the configuration size where the host
  // expects a pointer; read the buffer with the helper instead.
  onConfigure(size: u32): bool {
    this.config = String.UTF8.decode(get_buffer_bytes(BufferTypeValues.PluginConfiguration, 0, size));
    this.requests = new Counter("as_filter_requests");
    log(LogLevelValues.info, "as_filter configured: " + this.config);
    return true;
  }
}

function authDone(origin: Context, headers: u32, body_size: usize, trailers: u32): void {
  let status = stream_context.headers.http_callback.get(":status");
  if (status == "200") {
    stream_context.headers.request.add("x-as-auth", "ok");
    origin.continueRequest();
  } else {
    send_local_response(401, "denied", String.UTF8.encode("as denied\n"), [], GrpcStatusValues.PermissionDenied);
  }
}

class AsFilter extends Context {
  constructor(context_id: u32, root_context: AsRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as AsRoot;
    const req = stream_context.headers.request;
    req.add("x-as-added", root.config);
    req.replace("x-as-replace", "new");
    req.remove("x-as-remove");
    const counter = root.requests;
    if (counter !== null) counter.increment(1);
    if (req.get("x-as-block") != "") {
      send_local_response(403, "blocked", String.UTF8.encode("blocked by as_filter\n"), [], GrpcStatusValues.PermissionDenied);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (root.config == "auth") {
      let headers: Headers = [];
      headers.push(new HeaderPair(String.UTF8.encode(":method"), String.UTF8.encode("GET")));
      headers.push(new HeaderPair(String.UTF8.encode(":path"), String.UTF8.encode("/auth?user=" + req.get("x-user"))));
      headers.push(new HeaderPair(String.UTF8.encode(":authority"), String.UTF8.encode("auth")));
      root.httpCall("auth", headers, new ArrayBuffer(0), [], 5000, this, authDone);
      return FilterHeadersStatusValues.StopIteration;
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-as-resp", "1");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new AsRoot(context_id); }, "");
registerRootContext((context_id: u32) => { return new AsRoot(context_id); }, "as_filter");
