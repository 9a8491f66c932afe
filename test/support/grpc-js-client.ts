import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ChatMessageSchema } from "../../generated/user/v1/user_pb.js";

/**
 * A real third-party gRPC client: `@grpc/grpc-js` calling user.v1.UserService's bidi method Chat
 * (the interop suite's FullDuplexCall) over h2c, with protobuf-es doing the (de)serialization. It
 * is what the gRPC interop cases `cancel_after_first_response` and `timeout_on_sleeping_server`
 * run on (grpc/doc/interop-test-descriptions.md).
 */
export interface GrpcJsUserClient {
  /** Opens a Chat call with `metadata` (string values) and, if given, an absolute deadline. */
  chat(metadata: Headers, deadline?: Date): grpc.ClientDuplexStream<ChatInit, ChatMessage>;
  close(): void;
}

type ChatInit = MessageInitShape<typeof ChatMessageSchema>;
type ChatMessage = MessageShape<typeof ChatMessageSchema>;

/** How a grpc-js call ended: the gRPC status code and details of its `status` event. */
export interface GrpcJsStatus {
  readonly code: grpc.status;
  readonly details: string;
}

/** A grpc-js client of UserService.Chat at `baseUrl` (`http://127.0.0.1:<port>`, insecure). */
export function createGrpcJsUserClient(baseUrl: string): GrpcJsUserClient {
  const client = new grpc.Client(new URL(baseUrl).host, grpc.credentials.createInsecure());
  const serialize = (message: ChatInit) => Buffer.from(toBinary(ChatMessageSchema, create(ChatMessageSchema, message)));
  const deserialize = (bytes: Buffer): ChatMessage => fromBinary(ChatMessageSchema, bytes);
  return {
    chat(headers, deadline) {
      const metadata = new grpc.Metadata();
      headers.forEach((value, key) => {
        metadata.set(key, value);
      });
      const options = deadline === undefined ? {} : { deadline };
      return client.makeBidiStreamRequest("/user.v1.UserService/Chat", serialize, deserialize, metadata, options);
    },
    close: () => client.close(),
  };
}

/** Resolves with the call's final status (grpc-js emits `status` once, also for errors). */
export function statusOf(call: grpc.ClientDuplexStream<ChatInit, ChatMessage>): Promise<GrpcJsStatus> {
  call.on("error", () => {}); // the status event carries the same code
  return new Promise((resolve) => call.once("status", (s: grpc.StatusObject) => resolve(s)));
}
