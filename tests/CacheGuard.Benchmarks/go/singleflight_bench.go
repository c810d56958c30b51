// Command singleflight_bench measures golang.org/x/sync/singleflight on this machine, so the .NET suite can put
// CacheGuard's SingleFlight beside it in the same run. It prints one JSON object per line.
//
// Run (offline, Debian's golang-golang-x-sync-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run singleflight_bench.go [-quick]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/singleflight"
)

type product struct {
	ID   int
	Name string
}

type result struct {
	Name           string  `json:"name"`
	NsPerOp        float64 `json:"ns_per_op"`
	BytesPerOp     int64   `json:"bytes_per_op"`
	AllocsPerOp    int64   `json:"allocs_per_op"`
	N              int     `json:"n,omitempty"`
	LoaderCalls    int64   `json:"loader_calls,omitempty"`
	ExtraMs        float64 `json:"extra_ms_median,omitempty"`
	ExtraMsMax     float64 `json:"extra_ms_max,omitempty"`
	BytesPerCaller float64 `json:"bytes_per_caller,omitempty"`
}

var cached = &product{ID: 42, Name: "cached"}

func emit(r result) {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
}

func bench(name string, f func(b *testing.B)) {
	r := testing.Benchmark(f)
	emit(result{
		Name:        name,
		NsPerOp:     float64(r.T.Nanoseconds()) / float64(r.N),
		BytesPerOp:  r.AllocedBytesPerOp(),
		AllocsPerOp: r.AllocsPerOp(),
	})
}

// stampede: n goroutines, parked on a start gate, ask for one cold key whose loader sleeps 20 ms. Reports the loader
// calls, the time from opening the gate until every caller is served beyond the loader's own measured duration, and
// bytes allocated per caller after the callers were parked (goroutine stacks are not heap allocations).
func stampede(n, rounds int) {
	extras := make([]float64, 0, rounds)
	var totalCalls int64
	var totalBytes uint64
	for r := 0; r < rounds+1; r++ {
		var g singleflight.Group
		var calls int64
		var loaderNs int64
		var ready, done sync.WaitGroup
		ready.Add(n)
		done.Add(n)
		gate := make(chan struct{})
		for i := 0; i < n; i++ {
			go func() {
				defer done.Done()
				ready.Done()
				<-gate
				_, _, _ = g.Do("key", func() (interface{}, error) {
					atomic.AddInt64(&calls, 1)
					t := time.Now()
					time.Sleep(20 * time.Millisecond)
					atomic.StoreInt64(&loaderNs, int64(time.Since(t)))
					return cached, nil
				})
			}()
		}
		ready.Wait()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		close(gate)
		done.Wait()
		total := time.Since(start)
		runtime.ReadMemStats(&after)
		if r == 0 {
			continue // warm-up
		}
		totalCalls += calls
		totalBytes += after.TotalAlloc - before.TotalAlloc
		extras = append(extras, float64(total.Nanoseconds()-atomic.LoadInt64(&loaderNs))/1e6)
	}
	sort.Float64s(extras)
	emit(result{
		Name:           fmt.Sprintf("Stampede/%d", n),
		N:              n,
		LoaderCalls:    totalCalls / int64(rounds),
		ExtraMs:        extras[len(extras)/2],
		ExtraMsMax:     extras[len(extras)-1],
		BytesPerCaller: float64(totalBytes) / float64(rounds) / float64(n),
	})
}

func main() {
	testing.Init()
	quick := flag.Bool("quick", false, "short runs, for a smoke test")
	flag.Parse()
	benchtime := "1s"
	rounds := 20
	if *quick {
		benchtime = "100ms"
		rounds = 3
	}
	if err := flag.Set("test.benchtime", benchtime); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	bench("Do/uncontended", func(b *testing.B) {
		var g singleflight.Group
		fn := func() (interface{}, error) { return cached, nil }
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _, _ = g.Do("key", fn)
		}
	})

	bench("Do/contended-2", func(b *testing.B) {
		var g singleflight.Group
		fn := func() (interface{}, error) { return cached, nil }
		b.ReportAllocs()
		b.SetParallelism(1) // GOMAXPROCS goroutines: 2 on a 2-core machine
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _, _ = g.Do("key", fn)
			}
		})
	})

	for _, n := range []int{1000, 10000, 50000} {
		stampede(n, rounds)
	}
}
