/**
 * The contract of the polyglot test matrix's clients, one in each language (go/cmd/matrix-client,
 * python/matrix_client.py, ./matrix-client.ts): each reads a {@link MatrixPlan} as JSON from the
 * `MATRIX_PLAN` environment variable, makes every call of every target inside a root span of its
 * own (`matrix <call>`, INTERNAL, with `matrix.client`, `matrix.server` and `matrix.call`
 * attributes) with its language's traced gRPC client, and prints one {@link MatrixResult} per call
 * as a JSON line on standard output, in plan order.
 *
 * | call               | method                                  | request                          |
 * | ------------------ | --------------------------------------- | -------------------------------- |
 * | `unary`            | UserService/FetchUser                   | user 42                          |
 * | `server_streaming` | UserService/StreamUsers                 | page size 3 (the server calls GetBalance inside) |
 * | `client_streaming` | UserService/CreateUsers                 | 3 users                          |
 * | `bidi_streaming`   | UserService/Chat                        | 3 messages, each after the reply to the one before |
 * | `not_found`        | UserService/FetchUser                   | user 999999                      |
 * | `deadline`         | PaymentService/ProcessPayment           | 20,000 (a manual review), `deadlineMs` timeout |
 * | `unavailable`      | PaymentService/ProcessPayment           | 10, to a `paymentUrl` where nothing listens |
 *
 * Every other call has a 10 s timeout, a hang guard. Each `deadline` call has a control: the same
 * call without tracing, started beside it so that both meet the same conditions. When the traced
 * call ends with another code than DEADLINE_EXCEEDED and its control did not end with that code too,
 * the client makes up to `controlTries` bursts of `controlBurst` concurrent untraced calls, stopping
 * after the first burst in which one does. `controls` lists every control call's code. The known
 * other code is CANCELLED: grpc-go's server resets the stream with CANCEL at its own deadline (a
 * timer it starts from `grpc-timeout`), and when that reset arrives before the client's own timer
 * fires, clients that do not turn it into DEADLINE_EXCEEDED (connect, grpcio) report CANCELLED. It
 * takes a client whose timer fires late, as on a busy machine; a burst, whose timers the client
 * handles one after another, shows it more often than a single call.
 */

/** The languages of the polyglot system. */
export type Language = "go" | "python" | "ts";

/** Every language, in the order reports use. */
export const LANGUAGES: readonly Language[] = ["go", "python", "ts"];

/** The calls a matrix client makes, see the table above. */
export type MatrixCall =
  | "unary"
  | "server_streaming"
  | "client_streaming"
  | "bidi_streaming"
  | "not_found"
  | "deadline"
  | "unavailable";

/** One server of the plan and the calls to make to it. */
export interface MatrixTarget {
  /** Label of the server in results, e.g. `go`. */
  server: string;
  /** Base URL of its UserService, `http://127.0.0.1:<port>`. */
  userUrl: string;
  /** Base URL of its PaymentService. */
  paymentUrl: string;
  calls: MatrixCall[];
}

/** What one run of a matrix client does. */
export interface MatrixPlan {
  /** The client's language, also in its `service.name`: `client-<language>`. */
  client: Language;
  /** Timeout of the `deadline` calls, in ms. */
  deadlineMs: number;
  /** Most bursts of untraced control calls after a `deadline` call that did not end in DEADLINE_EXCEEDED. */
  controlTries: number;
  /** Concurrent calls in one burst of control calls. */
  controlBurst: number;
  targets: MatrixTarget[];
}

/** One call's outcome, as a client prints it. */
export interface MatrixResult {
  client: Language;
  server: string;
  call: MatrixCall;
  /** Canonical gRPC status name the client saw: `OK`, `NOT_FOUND`, `DEADLINE_EXCEEDED`, ... */
  code: string;
  /** Response messages received (1 for a unary answer, 0 for an error before any). */
  messages: number;
  /** Trace id of the call's root span, 32 lowercase hex digits. */
  traceId: string;
  /** Span id of the call's root span, 16 lowercase hex digits. */
  spanId: string;
  /** Codes of the untraced control calls, in order; empty when none were needed. */
  controls: string[];
}

/**
 * Parses a matrix client's standard output: one {@link MatrixResult} per non-empty line.
 *
 * @throws {TypeError} naming the line when one is not JSON of that shape
 */
export function parseMatrixResults(stdout: string): MatrixResult[] {
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new TypeError(`matrix result is not json: ${line}`);
      }
      if (!isResult(value)) {
        throw new TypeError(`matrix result has not the expected shape: ${line}`);
      }
      return value;
    });
}

function isResult(value: unknown): value is MatrixResult {
  const v = value as Record<string, unknown>;
  return (
    typeof value === "object" &&
    value !== null &&
    typeof v.client === "string" &&
    typeof v.server === "string" &&
    typeof v.call === "string" &&
    typeof v.code === "string" &&
    typeof v.messages === "number" &&
    typeof v.traceId === "string" &&
    /^[0-9a-f]{32}$/.test(v.traceId) &&
    typeof v.spanId === "string" &&
    /^[0-9a-f]{16}$/.test(v.spanId) &&
    Array.isArray(v.controls) &&
    v.controls.every((c) => typeof c === "string")
  );
}
