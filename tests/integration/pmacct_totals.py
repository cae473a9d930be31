# Compares nfacctd's print-plugin CSV (aggregate src_host,dst_host,src_port,dst_port,proto,tos)
# with gen_trace's truth: packets and bytes in total and for every 5-tuple and TOS. ICMP keys
# are compared without their type/code: nfacctd does not read icmpTypeCode into the ports.
#   python3 pmacct_totals.py TRUTH.csv NFACCT.csv
import collections, csv, sys

PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58}
truth = collections.Counter()
truth_bytes = collections.Counter()
with open(sys.argv[1]) as f:
    for t in csv.DictReader(f):
        proto = int(t["proto"])
        ports = (0, 0) if proto in (1, 58) else (int(t["sport"]), int(t["dport"]))
        key = (t["src"], t["dst"], *ports, proto, int(t["tos"]))
        truth[key] += int(t["packets"])
        truth_bytes[key] += int(t["bytes"])
got = collections.Counter()
got_bytes = collections.Counter()
with open(sys.argv[2]) as f:
    for r in csv.DictReader(f):
        proto = PROTO.get(r["PROTOCOL"].lower())
        proto = int(r["PROTOCOL"]) if proto is None else proto
        ports = (0, 0) if proto in (1, 58) else (int(r["SRC_PORT"]), int(r["DST_PORT"]))
        key = (r["SRC_IP"], r["DST_IP"], *ports, proto, int(r["TOS"]))
        got[key] += int(r["PACKETS"])
        got_bytes[key] += int(r["BYTES"])
errors = [f"{k}: packets {got.get(k)} bytes {got_bytes.get(k)}, want {truth[k]} {truth_bytes[k]}"
          for k in truth if got.get(k) != truth[k] or got_bytes.get(k) != truth_bytes[k]]
errors += [f"unexpected {k}" for k in got if k not in truth]
for e in errors[:20]:
    print(e)
print(f"nfacctd: {len(got)} keys, {sum(got.values())} packets, {sum(got_bytes.values())} bytes;"
      f" truth {len(truth)} keys, {sum(truth.values())} packets, {sum(truth_bytes.values())} bytes")
sys.exit(1 if errors else 0)
