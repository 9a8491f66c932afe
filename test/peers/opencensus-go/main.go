// Command opencensus-peer is a gRPC peer that carries trace context the OpenCensus way, in the
// binary `grpc-trace-bin` metadata, with go.opencensus.io/plugin/ocgrpc: the real peer that
// connect-otel's GrpcTraceBinPropagator is tested against (test/runtime-grpc-trace-bin.test.ts,
// which builds it as test/peers/.build/bin/opencensus-go with test/support/go-peer.ts). It needs
// no generated code: messages pass through as bytes.
//
//	opencensus-peer server
//	    Serves every method on 127.0.0.1 (an ephemeral port) and prints `listening <port>`. Each
//	    call reads one request and answers an empty message, with response headers x-oc-trace-id,
//	    x-oc-span-id and x-oc-sampled naming the server span ocgrpc started for it. Prints one JSON
//	    line per sampled span that ends. Exits when its standard input closes.
//	opencensus-peer client <address> <method path> <sampled: true|false>
//	    Calls the method once with the request FetchUserRequest{user_id: 7}, inside a root span
//	    sampled or not, then prints one JSON line per sampled span that ended, and a last line
//	    {"root": ...} with the root span's context. Exits 0 if the call succeeded.
//
// Span lines: {"span": {"name", "traceId", "spanId", "parentSpanId", "remoteParent", "kind"}}.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"

	"go.opencensus.io/plugin/ocgrpc"
	"go.opencensus.io/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// rawCodec passes messages through as bytes, under the name of the proto codec (content-type
// application/grpc+proto), so that any method can be called and served without generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

type spanLine struct {
	Name         string `json:"name"`
	TraceID      string `json:"traceId"`
	SpanID       string `json:"spanId"`
	ParentSpanID string `json:"parentSpanId"`
	RemoteParent bool   `json:"remoteParent"`
	Kind         int    `json:"kind"`
}

// lineExporter prints each exported (sampled) span as one JSON line on stdout.
type lineExporter struct {
	mu  sync.Mutex
	out *json.Encoder
}

func (e *lineExporter) ExportSpan(s *trace.SpanData) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.out.Encode(map[string]spanLine{"span": {
		Name:         s.Name,
		TraceID:      s.TraceID.String(),
		SpanID:       s.SpanID.String(),
		ParentSpanID: s.ParentSpanID.String(),
		RemoteParent: s.HasRemoteParent,
		Kind:         s.SpanKind,
	}})
}

func main() {
	exporter := &lineExporter{out: json.NewEncoder(os.Stdout)}
	trace.RegisterExporter(exporter)
	// A span with a sampled parent is sampled (ProbabilitySampler samples those); one without is not.
	trace.ApplyConfig(trace.Config{DefaultSampler: trace.ProbabilitySampler(0)})
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: opencensus-peer server | client <address> <method path> <sampled>"))
	}
	switch os.Args[1] {
	case "server":
		fail(serve())
	case "client":
		if len(os.Args) != 5 {
			fail(fmt.Errorf("usage: opencensus-peer client <address> <method path> <sampled>"))
		}
		sampled, err := strconv.ParseBool(os.Args[4])
		if err != nil {
			fail(err)
		}
		fail(call(os.Args[2], os.Args[3], sampled, exporter))
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "opencensus-peer:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serve() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := grpc.NewServer(
		grpc.StatsHandler(&ocgrpc.ServerHandler{}),
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			var request []byte
			if err := stream.RecvMsg(&request); err != nil {
				return err
			}
			sc := trace.FromContext(stream.Context()).SpanContext()
			if err := stream.SetHeader(metadata.Pairs(
				"x-oc-trace-id", sc.TraceID.String(),
				"x-oc-span-id", sc.SpanID.String(),
				"x-oc-sampled", strconv.FormatBool(sc.IsSampled()),
			)); err != nil {
				return err
			}
			response := []byte{}
			return stream.SendMsg(&response)
		}),
	)
	fmt.Printf("listening %d\n", lis.Addr().(*net.TCPAddr).Port)
	go func() {
		// the test closes stdin to stop the peer
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		server.Stop()
	}()
	return server.Serve(lis)
}

func call(address, method string, sampled bool, exporter *lineExporter) error {
	conn, err := grpc.NewClient(address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(&ocgrpc.ClientHandler{}),
	)
	if err != nil {
		return err
	}
	defer conn.Close()
	sampler := trace.NeverSample()
	if sampled {
		sampler = trace.AlwaysSample()
	}
	ctx, root := trace.StartSpan(context.Background(), "opencensus-peer.root", trace.WithSampler(sampler))
	request := []byte{0x08, 0x07} // FetchUserRequest{user_id: 7}
	var response []byte
	callErr := conn.Invoke(ctx, method, &request, &response, grpc.ForceCodec(rawCodec{}))
	root.End()
	sc := root.SpanContext()
	exporter.mu.Lock()
	defer exporter.mu.Unlock()
	if err := exporter.out.Encode(map[string]any{"root": map[string]any{
		"traceId": sc.TraceID.String(),
		"spanId":  sc.SpanID.String(),
		"sampled": sc.IsSampled(),
	}}); err != nil {
		return err
	}
	return callErr
}
