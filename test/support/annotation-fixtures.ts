import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { pluginDir, writeTree } from "./plugin-harness.js";

/**
 * Buf modules that exercise the generator's side of schema annotations
 * (`(connectotel.v1.field)`, `(connectotel.v1.method)`, `(connectotel.v1.service)`). Both carry a
 * copy of the plugin package's `proto/connectotel/v1/options.proto`, as a user's module that vendors it.
 */

/** `proto/connectotel/v1/options.proto` of the plugin package, the file the fixtures import. */
export const OPTIONS_PROTO = "connectotel/v1/options.proto";

const bufYaml = "version: v2\nmodules:\n  - path: proto\n";

/**
 * The valid annotated schemas, as files relative to the module root (without the options proto,
 * which {@link writeAnnotatedModule} copies in):
 *
 * - `ann/v1/common.proto`: `Leaf` with an annotated field and the `Color` enum, in a file of its own,
 *   so paths and enum tables cross files.
 * - `ann/v1/types.proto` (proto3): `Scalars` has one annotated field of every supported type
 *   (string, 32- and 64-bit integers, `jstype = JS_STRING` int64, floating point, bool, bytes, enums,
 *   an `allow_alias` enum with a negative value, repeated scalars, bytes and enums, proto3
 *   `optional`, oneof members, a oneof member message, a nested path through singular message
 *   fields `outer.middle.leaf.city`, a nested enum named like a top-level one) and unannotated,
 *   `debug_redact`, repeated message, map and self-referencing fields. `Node`/`Other`/`Pair` are
 *   recursive. `TypesService` has a traced method of each, an untraced method and one with
 *   `server_error_codes`; `QuietService` is untraced as a whole.
 * - `ann/v1/legacy.proto` (proto2): optional (with and without default), required, closed enum,
 *   repeated, and a nested required field.
 * - `ann/v1/edition.proto` (Edition 2023): explicit, implicit and legacy-required presence, a closed
 *   enum, expanded repeated encoding, a delimited message field, `jstype = JS_STRING`.
 */
export const annotatedModule: Readonly<Record<string, string>> = {
  "buf.yaml": bufYaml,
  "proto/ann/v1/common.proto": `syntax = "proto3";

package ann.v1;

import "connectotel/v1/options.proto";

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
}

message Leaf {
  string city = 1 [(connectotel.v1.field).attribute = "app.leaf.city"];
  // Never recorded.
  string street = 2 [debug_redact = true];
}
`,
  "proto/ann/v1/types.proto": `syntax = "proto3";

package ann.v1;

import "ann/v1/common.proto";
import "connectotel/v1/options.proto";

service TypesService {
  rpc GetScalars(Scalars) returns (Scalars);
  rpc Recurse(Node) returns (Pair);
  rpc WatchNodes(Node) returns (stream Other);
  rpc Skip(Scalars) returns (Scalars) {
    option (connectotel.v1.method).untraced = true;
  }
  rpc Codes(Pair) returns (Pair) {
    option (connectotel.v1.method) = {
      server_error_codes: [CODE_UNAVAILABLE, CODE_INTERNAL, CODE_NOT_FOUND, CODE_INTERNAL]
    };
  }
}

service QuietService {
  option (connectotel.v1.service).untraced = true;
  rpc Get(Scalars) returns (Scalars);
  rpc Sync(stream Scalars) returns (stream Node) {
    option (connectotel.v1.method) = {server_error_codes: [CODE_INTERNAL]};
  }
}

enum Mode {
  option allow_alias = true;
  MODE_UNSPECIFIED = 0;
  MODE_ON = 1;
  MODE_ENABLED = 1;
  MODE_BACKWARDS = -2;
}

message Scalars {
  string s = 1 [(connectotel.v1.field).attribute = "app.s"];
  int32 i32 = 2 [(connectotel.v1.field).attribute = "app.i32"];
  int64 i64 = 3 [(connectotel.v1.field).attribute = "app.i64"];
  uint64 u64 = 4 [(connectotel.v1.field).attribute = "app.u64"];
  sfixed64 sf64 = 5 [(connectotel.v1.field).attribute = "app.sf64"];
  int64 i64_str = 6 [jstype = JS_STRING, (connectotel.v1.field).attribute = "app.i64_str"];
  double d = 7 [(connectotel.v1.field).attribute = "app.d"];
  float f = 8 [(connectotel.v1.field).attribute = "app.f"];
  bool b = 9 [(connectotel.v1.field).attribute = "app.b"];
  bytes raw = 10 [(connectotel.v1.field).attribute = "app.raw"];
  Color color = 11 [(connectotel.v1.field).attribute = "app.color"];
  Mode mode = 12 [(connectotel.v1.field).attribute = "app.mode"];
  repeated string tags = 13 [(connectotel.v1.field).attribute = "app.tags"];
  repeated int64 ids = 14 [(connectotel.v1.field).attribute = "app.ids"];
  repeated int64 str_ids = 15 [jstype = JS_STRING, (connectotel.v1.field).attribute = "app.str_ids"];
  repeated bytes blobs = 16 [(connectotel.v1.field).attribute = "app.blobs"];
  repeated Mode modes = 17 [(connectotel.v1.field).attribute = "app.modes"];
  optional int32 maybe = 18 [(connectotel.v1.field).attribute = "app.maybe"];
  oneof choice {
    string name = 19 [(connectotel.v1.field).attribute = "app.choice.name"];
    Color tint = 20 [(connectotel.v1.field).attribute = "app.choice.tint"];
    Payload payload = 21;
  }
  Outer outer = 22;
  string plain = 23;
  // Never recorded.
  string secret = 24 [debug_redact = true];
  repeated Payload payloads = 25;
  map<string, Payload> by_name = 26;
  Scalars self = 27;
  uint32 u32 = 28 [(connectotel.v1.field).attribute = "app.u32"];
  sint32 si32 = 29 [(connectotel.v1.field).attribute = "app.si32"];
  fixed64 fx64 = 30 [(connectotel.v1.field).attribute = "app.fx64"];
  repeated bool flags = 31 [(connectotel.v1.field).attribute = "app.flags"];
}

message Payload {
  string code = 1 [(connectotel.v1.field).attribute = "app.payload.code"];
}

message Outer {
  message Middle {
    Leaf leaf = 1;
    string label = 2 [(connectotel.v1.field).attribute = "app.outer.middle.label"];
    oneof pick {
      bool flag = 3 [(connectotel.v1.field).attribute = "app.outer.middle.flag"];
    }
  }
  enum Color {
    COLOR_UNSPECIFIED = 0;
    COLOR_BLUE = 1;
  }
  Middle middle = 1;
  Color color = 2 [(connectotel.v1.field).attribute = "app.outer.color"];
}

message Node {
  string id = 1 [(connectotel.v1.field).attribute = "app.node.id"];
  Node child = 2;
  repeated Node children = 3;
  Other other = 4;
}

message Other {
  string note = 1 [(connectotel.v1.field).attribute = "app.other.note"];
  Node back = 2;
}

message Pair {
  Other first = 1;
}
`,
  "proto/ann/v1/legacy.proto": `syntax = "proto2";

package ann.v1;

import "connectotel/v1/options.proto";

service LegacyService {
  rpc Get(LegacyRequest) returns (LegacyInner);
}

enum Level {
  LEVEL_LOW = 1;
  LEVEL_HIGH = 2;
}

message LegacyRequest {
  optional string name = 1 [(connectotel.v1.field).attribute = "app.legacy.name"];
  required int32 id = 2 [(connectotel.v1.field).attribute = "app.legacy.id"];
  optional int64 big = 3 [(connectotel.v1.field).attribute = "app.legacy.big"];
  optional Level level = 4 [(connectotel.v1.field).attribute = "app.legacy.level"];
  repeated int32 nums = 5 [(connectotel.v1.field).attribute = "app.legacy.nums"];
  optional string with_default = 6 [default = "x", (connectotel.v1.field).attribute = "app.legacy.with_default"];
  required bytes blob = 7 [(connectotel.v1.field).attribute = "app.legacy.blob"];
  optional LegacyInner inner = 8;
}

message LegacyInner {
  required uint64 serial = 1 [(connectotel.v1.field).attribute = "app.legacy.inner.serial"];
}
`,
  "proto/ann/v1/edition.proto": `edition = "2023";

package ann.v1;

import "connectotel/v1/options.proto";

service EditionService {
  rpc Put(EditionRequest) returns (EditionInner);
}

enum Shade {
  option features.enum_type = CLOSED;
  SHADE_DARK = 1;
  SHADE_LIGHT = 2;
}

message EditionRequest {
  string name = 1 [(connectotel.v1.field).attribute = "app.edition.name"];
  int32 count = 2 [features.field_presence = IMPLICIT, (connectotel.v1.field).attribute = "app.edition.count"];
  int64 serial = 3 [features.field_presence = LEGACY_REQUIRED, (connectotel.v1.field).attribute = "app.edition.serial"];
  Shade shade = 4 [(connectotel.v1.field).attribute = "app.edition.shade"];
  repeated int32 expanded = 5 [features.repeated_field_encoding = EXPANDED, (connectotel.v1.field).attribute = "app.edition.expanded"];
  EditionInner inner = 6 [features.message_encoding = DELIMITED];
  int64 js = 7 [jstype = JS_STRING, (connectotel.v1.field).attribute = "app.edition.js"];
}

message EditionInner {
  bool ok = 1 [(connectotel.v1.field).attribute = "app.edition.inner.ok"];
}
`,
};

/** Proto file names of {@link annotatedModule}, relative to its `proto/` root. */
export const annotatedFiles = {
  common: "ann/v1/common.proto",
  types: "ann/v1/types.proto",
  legacy: "ann/v1/legacy.proto",
  edition: "ann/v1/edition.proto",
} as const;

/** One schema that must fail generation, and the one-line error it must fail with. */
export interface AnnotationErrorCase {
  /** Case name; the file is `errors/<name>.proto`, its package `errors.<name>`. */
  readonly name: string;
  /** The file's declarations after the package and imports. */
  readonly body: string;
  /** `proto3` unless given. */
  readonly syntax?: "proto2" | "proto3";
  /** Declares `service Service { rpc Get(Request) returns (Response); }` and `Response` (default true). */
  readonly service?: boolean;
  /** Element the error must name after the file, `field errors.<name>.Request.email`. */
  readonly element: string;
  /** What the rest of the error line must match. */
  readonly problem: RegExp;
}

const attr = (key: string) => `[(connectotel.v1.field).attribute = ${JSON.stringify(key)}]`;

/** A case where `string id = 1 [(connectotel.v1.field).attribute = <key>]` has an invalid key. */
function keyCase(name: string, key: string, problem: RegExp): AnnotationErrorCase {
  return {
    name,
    body: `message Request {\n  string id = 1 ${attr(key)};\n}\n`,
    element: `field errors.${name}.Request.id`,
    problem,
  };
}

const badKey = (key: string) =>
  new RegExp(`^\\(connectotel\\.v1\\.field\\)\\.attribute "${escapeRegExp(key)}" is not an`);
const reserved = (key: string, ns: string) =>
  new RegExp(
    `^\\(connectotel\\.v1\\.field\\)\\.attribute "${escapeRegExp(key)}" is in the namespace ${escapeRegExp(ns)}, `,
  );

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Every generation error of the annotations, one schema each. */
export const annotationErrorCases: readonly AnnotationErrorCase[] = [
  {
    name: "redact_field",
    body: `message Request {\n  string email = 1 [debug_redact = true, (connectotel.v1.field).attribute = "app.email"];\n}\n`,
    element: "field errors.redact_field.Request.email",
    problem: /^\(connectotel\.v1\.field\)\.attribute is set on a field marked debug_redact/,
  },
  {
    name: "redact_path",
    body: `message Request {\n  string id = 1 ${attr("app.id")};\n  Secret secret = 2 [debug_redact = true];\n}\n\nmessage Secret {\n  string token = 1 ${attr("app.token")};\n}\n`,
    element: "field errors.redact_path.Secret.token",
    problem: /^is recorded through errors\.redact_path\.Request\.secret, which is marked debug_redact/,
  },
  {
    name: "redact_deep_path",
    body: `message Request {\n  Wrapper wrapper = 1;\n}\n\nmessage Wrapper {\n  oneof kind {\n    Secret secret = 1 [debug_redact = true];\n  }\n}\n\nmessage Secret {\n  int64 pin = 1 ${attr("app.pin")};\n}\n`,
    element: "field errors.redact_deep_path.Secret.pin",
    problem: /^is recorded through errors\.redact_deep_path\.Wrapper\.secret, which is marked debug_redact/,
  },
  {
    name: "message_field",
    body: `message Request {\n  Inner inner = 1 ${attr("app.inner")};\n}\n\nmessage Inner {\n  string id = 1;\n}\n`,
    element: "field errors.message_field.Request.inner",
    problem: /^a message field cannot be recorded; annotate fields of errors\.message_field\.Inner instead$/,
  },
  {
    name: "map_field",
    body: `message Request {\n  map<string, string> labels = 1 ${attr("app.labels")};\n}\n`,
    element: "field errors.map_field.Request.labels",
    problem: /^a map field cannot be recorded$/,
  },
  {
    name: "repeated_message",
    body: `message Request {\n  repeated Inner items = 1 ${attr("app.items")};\n}\n\nmessage Inner {\n  string id = 1;\n}\n`,
    element: "field errors.repeated_message.Request.items",
    problem: /^a repeated message field cannot be recorded$/,
  },
  keyCase("empty_key", "", /^\(connectotel\.v1\.field\)\.attribute is empty/),
  {
    name: "empty_option",
    body: "message Request {\n  string id = 1 [(connectotel.v1.field) = {}];\n}\n",
    element: "field errors.empty_option.Request.id",
    problem: /^\(connectotel\.v1\.field\)\.attribute is empty/,
  },
  keyCase("key_upper_case", "App.User.Id", badKey("App.User.Id")),
  keyCase("key_space", "app.user id", badKey("app.user id")),
  keyCase("key_leading_dot", ".app.user.id", badKey(".app.user.id")),
  keyCase("key_trailing_dot", "app.user.", badKey("app.user.")),
  keyCase("key_double_dot", "app..id", badKey("app..id")),
  keyCase("key_dash", "app.user-id", badKey("app.user-id")),
  keyCase("key_digit_first", "1app.id", badKey("1app.id")),
  keyCase("reserved_rpc", "rpc.method", reserved("rpc.method", "rpc")),
  keyCase("reserved_error", "error.type", reserved("error.type", "error")),
  keyCase("reserved_server", "server.address", reserved("server.address", "server")),
  keyCase("reserved_network", "network.peer.address", reserved("network.peer.address", "network")),
  keyCase("reserved_message", "message.id", reserved("message.id", "message")),
  keyCase("reserved_connect_otel", "connect_otel.timeout_ms", reserved("connect_otel.timeout_ms", "connect_otel")),
  {
    name: "two_paths",
    body: `message Request {\n  Address home = 1;\n  Address work = 2;\n}\n\nmessage Address {\n  string city = 1 ${attr("app.city")};\n}\n`,
    element: "message errors.two_paths.Request",
    problem:
      /^attribute "app\.city" is recorded from two fields, errors\.two_paths\.Request\.home\.city and errors\.two_paths\.Request\.work\.city;/,
  },
  {
    name: "two_fields",
    body: `message Request {\n  string a = 1 ${attr("app.same")};\n  Inner inner = 2;\n}\n\nmessage Inner {\n  int32 b = 1 ${attr("app.same")};\n}\n`,
    element: "message errors.two_fields.Request",
    problem:
      /^attribute "app\.same" is recorded from two fields, errors\.two_fields\.Request\.a and errors\.two_fields\.Request\.inner\.b;/,
  },
  {
    name: "code_unspecified",
    body: "message Request {}\n",
    service: false,
    element: "method errors.code_unspecified.Service.Get",
    problem: /^\(connectotel\.v1\.method\)\.server_error_codes lists CODE_UNSPECIFIED, /,
  },
  {
    name: "code_out_of_range",
    body: "message Request {}\n",
    service: false,
    element: "method errors.code_out_of_range.Service.Get",
    problem: /^\(connectotel\.v1\.method\)\.server_error_codes lists 17, /,
  },
  {
    name: "unused_message_field",
    body: `message Unused {\n  Inner inner = 1 ${attr("app.inner")};\n}\n\nmessage Inner {\n  string id = 1;\n}\n`,
    service: false,
    element: "field errors.unused_message_field.Unused.inner",
    problem: /^a message field cannot be recorded;/,
  },
  {
    name: "unused_nested_key",
    body: `message Unused {\n  message Deeper {\n    string id = 1 ${attr("rpc.id")};\n  }\n}\n`,
    service: false,
    element: "field errors.unused_nested_key.Unused.Deeper.id",
    problem: /^\(connectotel\.v1\.field\)\.attribute "rpc\.id" is in the namespace rpc, /,
  },
  {
    name: "unused_two_paths",
    body: `message Unused {\n  Address home = 1;\n  Address work = 2;\n}\n\nmessage Address {\n  string city = 1 ${attr("app.city")};\n}\n`,
    service: false,
    element: "message errors.unused_two_paths.Unused",
    problem: /^attribute "app\.city" is recorded from two fields, /,
  },
  {
    name: "unused_redact_path",
    body: `message Unused {\n  Address address = 1 [debug_redact = true];\n}\n\nmessage Address {\n  string city = 1 ${attr("app.city")};\n}\n`,
    service: false,
    element: "field errors.unused_redact_path.Address.city",
    problem: /^is recorded through errors\.unused_redact_path\.Unused\.address, which is marked debug_redact/,
  },
  {
    name: "untraced_service",
    body: `message Request {\n  string id = 1 ${attr("App.Id")};\n}\n`,
    service: false,
    element: "field errors.untraced_service.Request.id",
    problem: badKey("App.Id"),
  },
  {
    name: "untraced_two_paths",
    body: `message Request {\n  Address home = 1;\n  Address work = 2;\n}\n\nmessage Address {\n  string city = 1 ${attr("app.city")};\n}\n`,
    service: false,
    element: "message errors.untraced_two_paths.Request",
    problem: /^attribute "app\.city" is recorded from two fields, /,
  },
  {
    name: "extension_field",
    syntax: "proto2",
    body: `message Request {\n  optional string id = 1;\n  extensions 100 to 199;\n}\n\nextend Request {\n  optional string tag = 100 ${attr("app.tag")};\n}\n`,
    element: "extension errors.extension_field.tag",
    problem: /^an extension field cannot be recorded/,
  },
  {
    name: "nested_extension_field",
    syntax: "proto2",
    body: `message Request {\n  optional string id = 1;\n  extensions 100 to 199;\n  extend Request {\n    optional int32 level = 101 ${attr("app.level")};\n  }\n}\n`,
    element: "extension errors.nested_extension_field.Request.level",
    problem: /^an extension field cannot be recorded/,
  },
];

/** Services of the cases that declare their own; the other cases with `service: false` have none, so no method uses their messages. */
const ownServices: Readonly<Record<string, string>> = {
  code_unspecified:
    "service Service {\n  rpc Get(Request) returns (Request) {\n    option (connectotel.v1.method) = {server_error_codes: [CODE_NOT_FOUND, CODE_UNSPECIFIED]};\n  }\n}\n",
  code_out_of_range:
    "service Service {\n  rpc Get(Request) returns (Request) {\n    option (connectotel.v1.method) = {server_error_codes: [CODE_INTERNAL, 17]};\n  }\n}\n",
  untraced_service:
    "service Service {\n  option (connectotel.v1.service).untraced = true;\n  rpc Get(Request) returns (Request);\n}\n",
  untraced_two_paths:
    "service Service {\n  rpc Get(Request) returns (Request) {\n    option (connectotel.v1.method).untraced = true;\n  }\n}\n",
};

/** `errors/<name>.proto`: the proto file name of a case. */
export function errorCaseFile(c: AnnotationErrorCase): string {
  return `errors/${c.name}.proto`;
}

/** The one line that generation of `c` must fail with: `<file>: <element>: <problem>`. */
export function errorCaseLine(c: AnnotationErrorCase): RegExp {
  const problem = c.problem.source.replace(/^\^/, "");
  return new RegExp(`^${escapeRegExp(`${errorCaseFile(c)}: ${c.element}: `)}${problem}`);
}

function errorCaseSource(c: AnnotationErrorCase): string {
  const syntax = c.syntax ?? "proto3";
  const service =
    ownServices[c.name] ??
    (c.service === false
      ? ""
      : "service Service {\n  rpc Get(Request) returns (Response);\n}\n\nmessage Response {}\n");
  return [
    `syntax = "${syntax}";`,
    "",
    `package errors.${c.name};`,
    "",
    `import "${OPTIONS_PROTO}";`,
    "",
    service,
    c.body,
  ].join("\n");
}

/** A buf module with one file per case of {@link annotationErrorCases}, and nothing else but the options proto. */
export const errorModule: Readonly<Record<string, string>> = {
  "buf.yaml": bufYaml,
  ...Object.fromEntries(annotationErrorCases.map((c) => [`proto/${errorCaseFile(c)}`, errorCaseSource(c)])),
};

/** Writes `files` into `dir`, with the plugin package's options proto at `proto/connectotel/v1/options.proto`. */
export async function writeModuleWithOptions(dir: string, files: Readonly<Record<string, string>>): Promise<void> {
  const options = await readFile(path.join(pluginDir, "proto", OPTIONS_PROTO), "utf8");
  await writeTree(dir, { ...files, [`proto/${OPTIONS_PROTO}`]: options });
}
