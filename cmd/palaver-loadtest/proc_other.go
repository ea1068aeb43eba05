//go:build !unix

package main

import "os"

// exitedPeakRSS is unknown without rusage.
func exitedPeakRSS(*os.ProcessState) int64 { return 0 }

// selfCPU is unknown without rusage.
func selfCPU() float64 { return 0 }
