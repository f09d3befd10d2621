// sk_skb stream_verdict: redirect every skb arriving on a socket to the
// EGRESS of its paired socket. Sockets live in a SOCKHASH keyed by their
// socket cookie; `peer` maps cookie -> peer cookie; `redir` counts bytes
// redirected towards each target cookie (used by user space to know when
// the deferred (workqueue) transmit has drained before propagating FIN).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
        __uint(type, BPF_MAP_TYPE_SOCKHASH);
        __uint(max_entries, 65536);
        __type(key, __u64);
        __type(value, __u64);
} socks SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 65536);
        __type(key, __u64);
        __type(value, __u64);
} peer SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 65536);
        __type(key, __u64);
        __type(value, __u64);
} redir SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, 4);
        __type(key, __u32);
        __type(value, __u64);
} stats SEC(".maps"); /* 0: redirected skbs, 1: no-peer passes, 2: redirect fail, 3: empty skbs */

static __always_inline void bump(__u32 i)
{
        __u64 *v = bpf_map_lookup_elem(&stats, &i);
        if (v)
                __sync_fetch_and_add(v, 1);
}

SEC("sk_skb/stream_verdict")
int verdict(struct __sk_buff *skb)
{
        /* tcp_read_skb() hands us the FIN skb too; a zero-length skb queued to
         * the peer's backlog would later hit EPIPE after we shutdown(SHUT_WR)
         * the peer, and the psock reports that as sk_err on the peer. */
        if (skb->len == 0) {
                bump(3);
                return SK_DROP;
        }
        __u64 c = bpf_get_socket_cookie(skb);
        __u64 *p = bpf_map_lookup_elem(&peer, &c);
        if (!p) {
                bump(1);
                return SK_PASS; /* stays readable by user space */
        }
        __u64 pc = *p;
        long r = bpf_sk_redirect_hash(skb, &socks, &pc, 0 /* egress */);
        if (r != SK_PASS) {
                bump(2);
                return SK_PASS;
        }
        __u64 *cnt = bpf_map_lookup_elem(&redir, &pc);
        if (cnt)
                __sync_fetch_and_add(cnt, skb->len);
        bump(0);
        return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
