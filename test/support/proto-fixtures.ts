import { readFile } from "node:fs/promises";
import { fromBinary } from "@bufbuild/protobuf";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { bufBin, runOk, writeTree } from "./plugin-harness.js";

/**
 * A buf module of schemas that exercise the generator's corner cases, as files relative to the
 * module root (write it with `writeTree`):
 *
 * - `fixture/v1/plain.proto`: messages only, no service.
 * - `fixture/v1/shop.proto`: one service with all four method kinds, all three idempotency
 *   levels, method comments, a service comment with `*\/` and a blank line in it, and a method
 *   named `ToString` (protobuf-es's local name is `toString$`).
 * - `fixture/v1/names.proto`: services whose generated names meet names the file imports:
 *   `Service` (→ `traceService`, the runtime's own function), `Client` and `Transport` (connect's
 *   types), and a deprecated service without comments.
 * - `fixture/v1/edition.proto`: a service in an Edition 2023 file.
 * - `nopkg.proto`: a service in a file without a package.
 */
export const fixtureModule: Readonly<Record<string, string>> = {
  "buf.yaml": "version: v2\nmodules:\n  - path: proto\n",
  "proto/fixture/v1/plain.proto": `syntax = "proto3";

package fixture.v1;

// Item is a thing in the shop.
message Item {
  string id = 1;
  string title = 2;
}

message ItemRef {
  string id = 1;
}
`,
  "proto/fixture/v1/shop.proto": `syntax = "proto3";

package fixture.v1;

import "fixture/v1/plain.proto";

// ShopService sells items.
//
// Its comment has two paragraphs, and a */ that must not end the JSDoc.
service ShopService {
  // GetItem reads one item.
  rpc GetItem(ItemRef) returns (Item) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }

  // PutItem stores an item.
  rpc PutItem(Item) returns (Item) {
    option idempotency_level = IDEMPOTENT;
  }

  rpc WatchItems(ItemRef) returns (stream Item);

  rpc UploadItems(stream Item) returns (ItemRef);

  rpc SyncItems(stream Item) returns (stream Item);

  rpc ToString(ItemRef) returns (Item);
}
`,
  "proto/fixture/v1/names.proto": `syntax = "proto3";

package fixture.v1;

import "fixture/v1/plain.proto";

// Service is named so that its wrapper is called traceService, like the runtime function.
service Service {
  rpc Get(ItemRef) returns (Item);
}

// Client is named like connect's Client type.
service Client {
  rpc Get(ItemRef) returns (Item);
}

// Transport is named like connect's Transport type.
service Transport {
  rpc Get(ItemRef) returns (Item);
}

service OldService {
  option deprecated = true;
  rpc Get(ItemRef) returns (Item);
}
`,
  "proto/fixture/v1/edition.proto": `edition = "2023";

package fixture.v1;

import "fixture/v1/plain.proto";

// EditionService lives in an Edition 2023 file.
service EditionService {
  rpc Delete(ItemRef) returns (ItemRef) {
    option idempotency_level = IDEMPOTENT;
  }
}
`,
  "proto/nopkg.proto": `syntax = "proto3";

service Bare {
  rpc Ping(Empty) returns (Empty);
}

message Empty {}
`,
};

/**
 * Builds the buf module or directory `input` (run from `cwd`) into `out` as a
 * google.protobuf.FileDescriptorSet with source info (comments), and returns its files, in
 * buf's order: every file after its imports, as CodeGeneratorRequest.proto_file needs them.
 */
export async function buildDescriptorSet(cwd: string, input: string, out: string): Promise<FileDescriptorProto[]> {
  await runOk(bufBin, ["build", input, "--as-file-descriptor-set", "-o", out], { cwd });
  return fromBinary(FileDescriptorSetSchema, await readFile(out)).file;
}

/** Writes `fixtureModule` into `dir`. */
export async function writeFixtureModule(dir: string): Promise<void> {
  await writeTree(dir, fixtureModule);
}

/** Proto file names of the fixture module, relative to its `proto/` root. */
export const fixtureFiles = {
  plain: "fixture/v1/plain.proto",
  shop: "fixture/v1/shop.proto",
  names: "fixture/v1/names.proto",
  edition: "fixture/v1/edition.proto",
  nopkg: "nopkg.proto",
} as const;
