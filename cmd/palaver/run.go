package main

import "context"

// cmdRun runs every configured bot, and the endpoint when gateway.enabled.
func cmdRun(ctx context.Context, e *env, args []string) error {
	return runServices(ctx, e, args, false)
}

// cmdServe runs the OpenAI-compatible endpoint only.
func cmdServe(ctx context.Context, e *env, args []string) error {
	return runServices(ctx, e, args, true)
}
