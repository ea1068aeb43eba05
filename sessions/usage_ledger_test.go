package sessions_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// TestLedger_Admit_Boundaries walks an endpoint key's daily and monthly
// limits across day and month ends in a zone 5 h 30 min ahead of UTC,
// with synctest's clock (which starts at midnight UTC on 1 January 2000,
// 05:30 in Kolkata).
func TestLedger_Admit_Boundaries(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		store, err := sessions.OpenBolt(filepath.Join(dir, "palaver.db"), sessions.BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		l := sessions.NewLedger(store, nil, sessions.UsageConfig{
			Location: kolkata,
			Key:      sessions.Limit{DailyTokens: 100, MonthlyTokens: 250},
		}, sessions.TurnObserver{}, nil)
		ctx := context.Background()
		use := func(tokens int) {
			t.Helper()
			record, err := l.Admit(ctx, "key#1", "p/m")
			if err != nil {
				t.Fatalf("%s: Admit = %v, want admitted", time.Now().In(kolkata), err)
			}
			record(llm.Usage{PromptTokens: tokens / 2, CompletionTokens: tokens - tokens/2}, false)
		}
		refused := func(want string, retry time.Duration) {
			t.Helper()
			_, err := l.Admit(ctx, "key#1", "p/m")
			var be *sessions.BudgetError
			if !errors.As(err, &be) || !errors.Is(err, sessions.ErrOverBudget) {
				t.Fatalf("%s: Admit = %v, want a *BudgetError", time.Now().In(kolkata), err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: refusal %q, want it to say %q", time.Now().In(kolkata), err, want)
			}
			if be.RetryAfter() != retry {
				t.Errorf("RetryAfter = %s, want %s", be.RetryAfter(), retry)
			}
			if got := sessions.Explain(err); got != err.Error() {
				t.Errorf("Explain = %q, want the refusal's sentence", got)
			}
		}

		use(100) // 1 January, 05:30 in Kolkata
		refused("API key key#1 has reached its daily limit of 100 tokens; it resets at midnight (Asia/Kolkata), in 18 h 30 min.", 18*time.Hour+30*time.Minute)
		time.Sleep(18*time.Hour + 30*time.Minute - time.Second)
		refused("in less than a minute", time.Second)
		time.Sleep(time.Second) // midnight on 2 January in Kolkata, 18:30 UTC
		use(100)
		refused("daily limit", 24*time.Hour)
		time.Sleep(24 * time.Hour)
		use(100) // 3 January: 300 tokens this month
		time.Sleep(24 * time.Hour)
		// 4 January: the monthly limit, until 1 February in Kolkata,
		// which is 31 January, 18:30 UTC.
		toFeb := time.Date(2000, 2, 1, 0, 0, 0, 0, kolkata).Sub(time.Now())
		refused("monthly limit of 250 tokens; it resets on 1 February at midnight (Asia/Kolkata), in 28 days.", toFeb)
		time.Sleep(toFeb - time.Second)
		if now := time.Now().UTC(); now != time.Date(2000, 1, 31, 18, 29, 59, 0, time.UTC) {
			t.Fatalf("now = %s", now)
		}
		refused("monthly limit", time.Second)
		time.Sleep(time.Second)
		use(100)

		counts, err := store.UsageCounters(ctx, []sessions.UsageKey{
			{Period: "2000-01", Kind: "key", ID: "key#1"},
			{Period: "2000-02", Kind: "key", ID: "key#1"},
			{Period: "2000-01-01", Kind: "key", ID: "key#1"},
			{Period: "2000-02-01", Kind: "model", ID: "p/m"},
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []int64{300, 100, 100, 100} {
			if got := counts[i].Tokens(); got != want {
				t.Errorf("counter %d: %d tokens, want %d", i, got, want)
			}
		}
	})
}

// TestLedger_Admit_Waits checks that an answer near a limit waits for the
// one in flight, is refused once that one went over, and that usage
// recorded after midnight counts on the new day.
func TestLedger_Admit_Waits(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		store, err := sessions.OpenBolt(filepath.Join(dir, "palaver.db"), sessions.BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		var refusals []string
		l := sessions.NewLedger(store, nil, sessions.UsageConfig{Key: sessions.Limit{DailyTokens: 5000}},
			sessions.TurnObserver{BudgetRefused: func(s string) { refusals = append(refusals, s) }}, nil)
		ctx := context.Background()
		record, err := l.Admit(ctx, "key#1", "p/m")
		if err != nil {
			t.Fatal(err)
		}
		record(llm.Usage{PromptTokens: 4000, CompletionTokens: 500}, false)

		// 4,500 used, and an answer reserves at least 1,000: the second
		// of two waits for the first.
		first, err := l.Admit(ctx, "key#1", "p/m")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		admit := func(ctx context.Context) {
			record, err := l.Admit(ctx, "key#1", "p/m")
			if err == nil {
				record(llm.Usage{}, false) // ends without usage
			}
			done <- err
		}
		go admit(ctx)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("the second answer was judged at once: %v", err)
		default:
		}
		// The first ends after midnight: its usage counts on 2 January,
		// where the second finds room.
		time.Sleep(24 * time.Hour)
		first(llm.Usage{PromptTokens: 3000, CompletionTokens: 1000}, false)
		if err := <-done; err != nil {
			t.Fatalf("the waiting answer on a new day: %v", err)
		}
		got, err := store.UsageCounters(ctx, []sessions.UsageKey{{Period: "2000-01-02", Kind: "key", ID: "key#1"}})
		if err != nil || got[0].Tokens() != 4000 {
			t.Errorf("2 January: %+v %v", got, err)
		}
		// Near the limit again, with the new largest request (4,500)
		// reserved: a waiting answer is refused once the one in flight
		// went over.
		second, err := l.Admit(ctx, "key#1", "p/m")
		if err != nil {
			t.Fatal(err)
		}
		go admit(ctx)
		synctest.Wait()
		second(llm.Usage{PromptTokens: 900, CompletionTokens: 200}, true)
		if err := <-done; !errors.Is(err, sessions.ErrOverBudget) {
			t.Fatalf("the waiting answer after the limit was reached: %v", err)
		}
		if len(refusals) != 1 || refusals[0] != "key" {
			t.Errorf("refusals observed: %q", refusals)
		}
		// A waiting answer leaves when its context ends.
		third, err := func() (func(llm.Usage, bool), error) {
			time.Sleep(24 * time.Hour)
			return l.Admit(ctx, "key#1", "p/m")
		}()
		if err != nil {
			t.Fatal(err)
		}
		third(llm.Usage{PromptTokens: 4500}, false)
		cctx, cancel := context.WithCancel(ctx)
		blocked, err := l.Admit(ctx, "key#1", "p/m")
		if err != nil {
			t.Fatal(err)
		}
		go admit(cctx)
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("a cancelled wait: %v", err)
		}
		blocked(llm.Usage{}, false)
	})
}
