/**
 * The same UserService on `@grpc/grpc-js`, the stack that `@opentelemetry/instrumentation-grpc`
 * traces: the schema loaded from proto/user/v1/user.proto with `@grpc/proto-loader`, a server whose
 * methods do what test/support/user-impl.ts does for connect (FetchUser sends a response header and
 * a trailer; StreamUsers writes `page_size` users; Chat echoes every message), and a client with
 * promise-returning calls in the shape the benchmark drives.
 *
 * Two independent copies of grpc-js are loaded into the process: {@link loadGrpcJs} requires one
 * before the instrumentation exists (never patched) and, after emptying the require cache of grpc-js'
 * files, one after `new GrpcInstrumentation()` has hooked `require`, which the instrumentation
 * patches as it does in an application that registers it first, as the OpenTelemetry docs say to.
 * The instrumentation patches `Client.prototype` and `Server.prototype.register` of the module it
 * sees, so one copy cannot serve as both the untraced and the traced stack.
 */
import { once } from "node:events";
import { createRequire } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import type { TracerProvider } from "@opentelemetry/api";
import { GrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";

/** The `@grpc/grpc-js` module's type. */
export type GrpcJs = typeof grpc;

/** The untraced and the instrumented copy of grpc-js, and the instrumentation that patched the second. */
export interface GrpcJsCopies {
  readonly plain: GrpcJs;
  readonly instrumented: GrpcJs;
  readonly instrumentation: GrpcInstrumentation;
}

/**
 * Loads grpc-js twice, untraced and instrumented by `@opentelemetry/instrumentation-grpc` with
 * spans from `tracerProvider` (see the module comment).
 *
 * @throws Error if the second copy is the first one (the require cache was not emptied) or the
 * instrumentation did not patch it.
 */
export function loadGrpcJs(tracerProvider: TracerProvider): GrpcJsCopies {
  const require = createRequire(import.meta.url);
  const plain = require("@grpc/grpc-js") as GrpcJs;
  const root = path.resolve(path.dirname(require.resolve("@grpc/grpc-js")), "../..") + path.sep;
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(root)) delete require.cache[key];
  }
  const instrumentation = new GrpcInstrumentation();
  instrumentation.setTracerProvider(tracerProvider);
  const instrumented = require("@grpc/grpc-js") as GrpcJs;
  if (instrumented === plain) throw new Error("grpc-js: the instrumented copy is the untraced one");
  const patched = (fn: unknown) => typeof fn === "function" && "__wrapped" in fn;
  if (!patched(instrumented.Client.prototype.makeUnaryRequest) || patched(plain.Client.prototype.makeUnaryRequest)) {
    throw new Error("grpc-js: @opentelemetry/instrumentation-grpc did not patch exactly the second copy");
  }
  return { plain, instrumented, instrumentation };
}

/** FetchUserRequest, UserResponse, StreamUsersRequest and ChatMessage as proto-loader decodes them (int64 as string). */
interface FetchUserRequest {
  userId: number;
}
interface UserResponse {
  id: number;
  name: string;
  email?: string;
}
interface StreamUsersRequest {
  pageSize: number;
}
interface ChatMessage {
  user: string;
  message: string;
  timestamp: string;
}

/** The dynamic methods of a UserService client that grpc-js builds from the package definition. */
interface UserServiceGrpcClient extends grpc.Client {
  fetchUser(
    request: FetchUserRequest,
    callback: (err: grpc.ServiceError | null, response?: UserResponse) => void,
  ): grpc.ClientUnaryCall;
  streamUsers(request: StreamUsersRequest): grpc.ClientReadableStream<UserResponse>;
  chat(): grpc.ClientDuplexStream<ChatMessage, ChatMessage>;
}

const protoRoot = fileURLToPath(new URL("../../proto", import.meta.url));
const optionsProtoRoot = fileURLToPath(new URL("../../src/protoc-gen-connect-otel/proto", import.meta.url));

/** The UserService definition and client constructor of one grpc-js copy (its `loadPackageDefinition`, patched or not). */
function userService(grpcJs: GrpcJs): grpc.ServiceClientConstructor {
  const definition = loadSync("user/v1/user.proto", {
    includeDirs: [protoRoot, optionsProtoRoot],
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpcJs.loadPackageDefinition(definition) as unknown as {
    user: { v1: { UserService: grpc.ServiceClientConstructor } };
  };
  return loaded.user.v1.UserService;
}

/** The server side of the UserService on grpc-js, doing what createUserImpl does on connect. */
function createGrpcUserImpl(grpcJs: GrpcJs): grpc.UntypedServiceImplementation {
  return {
    fetchUser(
      call: grpc.ServerUnaryCall<FetchUserRequest, UserResponse>,
      callback: grpc.sendUnaryData<UserResponse>,
    ): void {
      const header = new grpcJs.Metadata();
      header.set("x-user-header", "h");
      call.sendMetadata(header);
      const trailer = new grpcJs.Metadata();
      trailer.set("x-user-trailer", "t");
      const id = call.request.userId;
      callback(null, { id, name: `user-${id}`, email: `user-${id}@example.com` }, trailer);
    },
    streamUsers(call: grpc.ServerWritableStream<StreamUsersRequest, UserResponse>): void {
      void (async () => {
        const count = Math.abs(call.request.pageSize);
        for (let i = 1; i <= count && !call.cancelled; i++) {
          if (!call.write({ id: i, name: `user-${i}` })) await once(call, "drain");
        }
        call.end();
      })();
    },
    createUsers(call: grpc.ServerReadableStream<unknown, { count: number }>, callback: grpc.sendUnaryData<unknown>) {
      let count = 0;
      call.on("data", () => count++);
      call.on("end", () => callback(null, { count }));
    },
    chat(call: grpc.ServerDuplexStream<ChatMessage, ChatMessage>): void {
      call.on("data", (m: ChatMessage) => {
        call.write({ user: "server", message: `echo ${m.message}`, timestamp: m.timestamp });
      });
      call.on("end", () => call.end());
    },
  };
}

/** Calls of the UserService as the benchmark makes them, on either stack. */
export interface UserCalls {
  /** One FetchUser call. */
  unary(): Promise<void>;
  /** One StreamUsers call of `count` messages, read to the end; resolves to the messages received. */
  serverStream(count: number): Promise<number>;
  /** One Chat call sending `count` messages as fast as the stream takes them; resolves to the messages received. */
  bidi(count: number): Promise<number>;
}

/** A grpc-js server for the UserService on 127.0.0.1 and a client of it. */
export interface GrpcUserStack {
  readonly calls: UserCalls;
  close(): void;
}

/** Starts a grpc-js UserService server on an ephemeral port of 127.0.0.1 (h2c) and connects a client to it. */
export async function startGrpcUserStack(grpcJs: GrpcJs): Promise<GrpcUserStack> {
  const UserService = userService(grpcJs);
  const server = new grpcJs.Server();
  server.addService(UserService.service, createGrpcUserImpl(grpcJs));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpcJs.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const client = new UserService(
    `127.0.0.1:${port}`,
    grpcJs.credentials.createInsecure(),
  ) as unknown as UserServiceGrpcClient;
  const calls: UserCalls = {
    unary: () =>
      new Promise<void>((resolve, reject) => {
        client.fetchUser({ userId: 7 }, (err) => (err ? reject(err) : resolve()));
      }),
    async serverStream(count) {
      let received = 0;
      for await (const _ of client.streamUsers({ pageSize: count })) received++;
      return received;
    },
    bidi: (count) =>
      new Promise<number>((resolve, reject) => {
        const call = client.chat();
        let received = 0;
        call.on("data", () => received++);
        call.on("error", reject);
        call.on("end", () => resolve(received));
        let next = 1;
        const writeMore = (): void => {
          while (next <= count) {
            const ok = call.write({ user: "client", message: "hello", timestamp: String(next) });
            next++;
            if (!ok) {
              call.once("drain", writeMore);
              return;
            }
          }
          call.end();
        };
        writeMore();
      }),
  };
  return {
    calls,
    close() {
      client.close();
      server.forceShutdown();
    },
  };
}
