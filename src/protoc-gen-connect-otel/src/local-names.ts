import type { DescFile, DescMethod } from "@bufbuild/protobuf";

/**
 * Throws if two methods of one service in `file` have the same protobuf-es local name: it is the
 * method name with its first letter lowercased, `$`-suffixed if it is a built-in object property,
 * so `GetItem` and `getItem` are both `getItem`, `ToString` and `toString` both `toString$`.
 * connect-es keys clients, service implementations and router entries by local name, so one of the
 * two methods could never be called or served, and no generated name can change that.
 *
 * @throws Error with a one-line message naming the proto file, the service and both methods.
 */
export function assertUniqueLocalNames(file: DescFile): void {
  for (const service of file.services) {
    const seen = new Map<string, DescMethod>();
    for (const method of service.methods) {
      const first = seen.get(method.localName);
      if (first !== undefined) {
        throw new Error(
          `${file.proto.name}: methods ${first.name} and ${method.name} of service ${service.typeName} have the same local name "${method.localName}" in protobuf-es, so connect-es could call and serve only one of them: rename one`,
        );
      }
      seen.set(method.localName, method);
    }
  }
}
