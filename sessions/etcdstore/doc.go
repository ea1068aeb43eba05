// Package etcdstore keeps palaver's conversations in an etcd cluster, so
// that several palaver processes share them, and coordinates those
// processes: who answers a conversation (Claim), who receives Telegram's
// updates (Lead), which process runs which Discord shard (Watch, Ready,
// Drop, Identify). Shards move between processes make-before-break: the
// receiver connects before the holder lets go, and a process stopping
// (Close, or the end of Watch's context) hands its shards over first.
//
// Store satisfies sessions.Store, sessions.UsageStore and
// sessions.Claimer with BoltStore's semantics (the contract tests of
// sessions/storetest run against both), using one etcd transaction where
// BoltStore uses one bbolt transaction. Each transaction compares what it
// read (ModRevision of every key read, the history's head for its
// entries), so that a write racing another process's is prepared again,
// and the writes of one conversation within a process are serialised.
//
// # Processes, leases and fencing
//
// Each process has one session lease (TTL Config.Failover, 10 s by
// default, kept alive by the client) and a member record under it.
// Everything the process holds is attached to that lease: a process that
// dies or is cut off loses it all when the lease expires, and etcd, not a
// local clock, decides when. The process gives its lease up itself after
// three quarters of the TTL without a renewal, before the cluster can
// hand what it held to others, then takes a new one.
//
// Claim creates claims/<conversation> under the lease. While the process
// holds a claim, every write of the conversation compares the claim key's
// CreateRevision with the one it got; without a claim, it requires the
// key to be absent. A write whose compare fails writes nothing and returns
// sessions.ErrNotOwner: a process that lost its lease never commits
// afterwards, and no process writes a conversation another holds.
//
// # Key layout, schema 1
//
// Keys are under Config.Prefix ("/palaver/"); <conv> is Key.String()
// with '%' and '/' escaped as %25 and %2F; numbers in keys are 16 hex
// digits (<seq>, <id>) unless noted. Values are JSON unless noted.
//
//	schema                          "1": Open refuses another version
//	conv/<conv>/settings            sessions.Settings
//	conv/<conv>/last_message        platform id of the last ordered user
//	                                message accepted (text), as BoltStore's
//	conv/<conv>/recent_messages     the last unordered (Discord) message
//	                                ids accepted, 8 bytes each, at most
//	                                sessions.RecentMessages (binary: see
//	                                sessions.RememberMessage)
//	conv/<conv>/head                {"id","first","last"}: the history is
//	                                hist/<id>/<seq> for seq first..last
//	hist/<id>/<seq>                 sessions.Entry (Seq not in the JSON)
//	progress/<conv>/<turn id>       sessions.Progress (Key, ID not in it)
//	queued/<conv>/<turn id>         sessions.Queued (Key, ID not in it)
//	values/<name>                   raw bytes (name escaped like <conv>)
//	blobs/<sha256>/refs             how many entries refer to the image
//	                                (decimal text)
//	blobs/<sha256>/data/<nnnn>      the image, in chunks of 1 MiB (nnnn
//	                                is 4 decimal digits)
//	release/<random id>             {"<sha256>": n}: references to drop
//	usage/counters/<kind>/<id>/<period>[/<part>]
//	                                sessions.Tally, in BoltStore's varint
//	                                encoding (ids and parts escaped)
//	usage/records/<day>/<platform>/<user>/<group>/<conversation>/<key>/<model>
//	                                Tally of a day's usage of one kind
//	usage/names/<platform:user>     the name a user had when last recorded
//	handoff/<conv>                  {"from","note"}: what the last release
//	                                passed on to the next claim, which
//	                                deletes it (see Leave); under a lease
//	                                of its own, 65–90 s
//	shards/auto                     the Discord shard count the processes
//	                                agreed on for discord.shards auto
//	                                (decimal; see AgreeShards)
//
// Attached to session leases (gone with the process):
//
//	members/<member>                {"member","started","addr","lease"}
//	claims/<conv>                   the member holding the conversation
//	budgets/<bot>/<member>          member draws on the bot's per-bot
//	                                request budget (see ShareBudget)
//	leaders/<name>/<lease>          etcd election (concurrency.Election)
//	shards/<total>/members/<member> a member running the Discord shards
//	                                of total (while its Watch runs)
//	shards/<total>/held/<n>         the member holding shard n (decimal)
//	shards/<total>/ready/<n>/<member>
//	                                member's connection of shard n
//	                                answered READY (a shard handed over
//	                                make-before-break, see Watch)
//	identify/<bucket>/<lease>       etcd lock (concurrency.Mutex)
//	identify-last/<bucket>          a key under a 5 s lease: the bucket's
//	                                last IDENTIFY began less than 5 s ago
//
// The history lives under an id of its own, so that Move renames a
// conversation by moving its head (a few keys, whatever its length), and
// Reset deletes it with one range delete.
//
// # Limits
//
// etcd refuses a transaction of more than --max-txn-ops operations (128
// by default) or a request over --max-request-bytes (1.5 MiB), so:
//
//   - a history entry is one key, and a turn's commit is about 20
//     operations (entries, head, mark, queued and progress records, about
//     12 usage counters) plus one or two per image;
//   - an image is written ahead of its commit, chunk by chunk, each in a
//     transaction of its own, under a lease of its own (60 s) that is
//     revoked after the commit: the commit takes the chunks off that
//     lease, keeping their values (an etcd put with ignore_value), so
//     its request holds no image data, and chunks no commit took vanish;
//   - deleting entries (pruning, DeleteLast, Reset, Move over a
//     conversation, a /retry's Replace) deletes them in the write's
//     transaction and records the images they referred to in a release
//     record; the counts go down, and images no entry refers to any more
//     are deleted, right after, in transactions of at most MaxTxnOps
//     images. A record a stopped process left is applied by the next
//     Open, or by any process's sweep (every minute);
//   - a write still over the limits (an Append of more than about 120
//     entries, an entry over 1.5 MiB) fails with ErrTooLarge, naming the
//     limit, before anything is sent. Config.MaxTxnOps and
//     Config.MaxRequestBytes must match the cluster's flags.
//
// # Write-behind
//
// SetProgress writes behind, as BoltStore does: records wait in memory
// for Config.ProgressFlush (250 ms) and are written together, each in a
// nested transaction fenced by its conversation's claim (a record of a
// conversation the process no longer holds is dropped). SaveProgress,
// Commit and every other write are durable when they return: etcd has
// the write on a quorum's disks.
//
// # Sizing
//
// etcd keeps its whole keyspace in one bbolt file whose size is capped by
// --quota-backend-bytes (2 GiB by default, 8 GiB at most as advised by
// etcd). BenchmarkKeyspace writes 200 conversations of 20 turns (a
// question of 130 characters, an answer of 1,000) and measures, in keys
// and values:
//
//	per history entry       about 800 bytes
//	per conversation        about 300 bytes besides its history, and
//	                        up to 2 KiB more for a Discord one (the ids
//	                        of its last 256 messages, recent_messages)
//	usage                   about 360 bytes per conversation of that test
//	                        (counters grow per user, group, model and
//	                        day, not per message; pruned after
//	                        limits.usage_retention_days)
//
// So for 10,000 conversations the live keyspace is about
// 10,000 × entries kept × 800 bytes:
//
//	entries kept (storage.history_limit)   per 10,000 conversations
//	40                                     320 MB
//	100                                    800 MB
//	200                                    1.6 GB
//	1,000 (the default, if all are full)   8 GB: over etcd's quota
//
// Every write also keeps the previous revision of what it changed until
// etcd compacts (a turn rewrites the head and about 12 usage counters: 1
// to 2 KB besides its entries; a Discord question, its conversation's
// recent_messages too: up to 2 KiB), and space is returned to the quota only
// by a defragmentation. Run etcd with --auto-compaction-mode=periodic
// --auto-compaction-retention=1h, defragment its members now and then
// (etcdctl defrag), set --quota-backend-bytes to twice the live keyspace
// at least, and choose storage.history_limit from the table: 200 keeps
// 10,000 busy conversations within a quota of 4 GiB.
package etcdstore
