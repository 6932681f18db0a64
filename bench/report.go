package main

import (
	"fmt"
	"slices"
	"time"
)

func printResult(r result) {
	fmt.Printf("%-36s %9.0f req/s  p50 %8s  p99 %8s  peak RSS %6.1f MB  (%d requests, %d failed)\n",
		r.name, r.rps, round(r.p50), round(r.p99), float64(r.rssKB)/1024, r.requests, r.failures)
}

func round(d time.Duration) time.Duration {
	return d.Round(time.Microsecond)
}

// percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest value that at least p % of the values do not
// exceed. Of 100 values, the 99th percentile is the second highest.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100
	return sorted[max(rank-1, 0)]
}

// report prints the revocation figures and the ratios, ending with the
// hook/bare ratio. Each ratio is taken round by round, between runs a few
// seconds apart, and printed as the median with the range of the middle
// half and of all.
// A drift in the machine's speed over the whole run then cancels out
// instead of favouring one scenario.
func report(rounds map[string][]result, revocation []time.Duration) {
	fmt.Println()
	if len(revocation) > 0 {
		fmt.Printf("revocation seen by the other instances: p50 %s, p99 %s, max %s (%d observations)\n",
			round(percentile(revocation, 50)), round(percentile(revocation, 99)), round(revocation[len(revocation)-1]), len(revocation))
	} else {
		fmt.Println("revocation across instances: not measured on SQLite, which has no notifications (run with -store postgresql)")
	}
	printRatio("cached/uncached", rounds[nameHook], rounds[nameNoCache])
	printRatio("hook/echo", rounds[nameHook], rounds[nameEcho])
	printRatio("flood/quiet", rounds[nameFlood], rounds[nameHook])
	printRatio("hook/bare", rounds[nameHook], rounds[nameBare])
}

// printRatio prints the median of the round-by-round ratios of a's
// throughput to b's and, when there are four rounds or more, the range of
// the middle half of them and of all.
func printRatio(name string, a, b []result) {
	ratios := make([]float64, len(a))
	for i := range a {
		ratios[i] = a[i].rps / b[i].rps
	}
	slices.Sort(ratios)
	n := len(ratios)
	if n >= 4 {
		fmt.Printf("  %s by round: middle half %.2f to %.2f, all %.2f to %.2f\n",
			name, ratios[n/4], ratios[(3*n-1)/4], ratios[0], ratios[n-1])
	}
	median := ratios[n/2]
	if n%2 == 0 {
		median = (ratios[n/2-1] + ratios[n/2]) / 2
	}
	fmt.Printf("ratio %s = %.2f\n", name, median)
}
