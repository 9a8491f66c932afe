import type { IncomingMessage } from "node:http";

/**
 * Reads a request body of at most `maxBytes` bytes. A larger body destroys the request and
 * rejects with `tooLarge()`, the caller's own error (an HTTP 413 of its kind); a socket error
 * rejects with that error.
 */
export function readBody(req: IncomingMessage, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.destroy();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
