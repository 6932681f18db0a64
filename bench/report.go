package main

import (
	"fmt"
	"time"
)

func printResult(r result) {
	fmt.Printf("%-36s %9.0f req/s  p50 %8s  p99 %8s  peak RSS %6.1f MB  (%d requests, %d failed)\n",
		r.name, r.rps, round(r.p50), round(r.p99), float64(r.rssKB)/1024, r.requests, r.failures)
}

func round(d time.Duration) time.Duration {
	return d.Round(time.Microsecond)
}

func percentile(sorted []time.Duration, p int) time.Duration {
	i := len(sorted) * p / 100
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// report prints the revocation figures and the ratios, ending with the
// hook/bare ratio.
func report(results map[string]result, flood result, revocation []time.Duration) {
	bare, hook := results["bare net/http"], results["hook, cache"]
	nocache, echo := results["hook, no cache"], results["echo KeyAuth"]
	fmt.Println()
	if len(revocation) > 0 {
		fmt.Printf("revocation seen by the other instances: p50 %s, p99 %s, max %s (%d observations)\n",
			round(percentile(revocation, 50)), round(percentile(revocation, 99)), round(revocation[len(revocation)-1]), len(revocation))
	} else {
		fmt.Println("revocation across instances: not measured on SQLite, which has no notifications (run with -store postgresql)")
	}
	fmt.Printf("ratio cached/uncached = %.2f\n", hook.rps/nocache.rps)
	fmt.Printf("ratio hook/echo = %.2f\n", hook.rps/echo.rps)
	fmt.Printf("ratio flood/quiet = %.2f\n", flood.rps/hook.rps)
	fmt.Printf("ratio hook/bare = %.2f\n", hook.rps/bare.rps)
}
