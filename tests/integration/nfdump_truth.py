# Compares nfdump records (-o 'fmt:%ts,%te,%sa,%da,%sp,%dp,%pr,%tos,%pkt,%byt,%flg,%in,%out')
# with gen_trace's truth, key by key (read_e2e.sh and ipfix_e2e.sh).
#   python3 nfdump_truth.py TRUTH.csv DUMP.txt exact|split
# Compares nfdump records with gen_trace's truth, key by key. mode "exact": one flow per key;
# "split": timeouts may have cut a key into several flows, totals per key must still match.
import csv, datetime, sys

truth_file, dump_file, mode = sys.argv[1], sys.argv[2], sys.argv[3]
# nfdump rebuilds absolute times from sysUptime and unix_secs/nsecs, both in ms: +-2 ms.
TOL_MS = 2
PROTO = {"TCP": 6, "UDP": 17, "ICMP": 1}

def epoch_ms(s):
    d = datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f")
    return round(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)

def flags(s):
    return sum(0x80 >> i for i, c in enumerate(s) if c != ".")

def port(s):
    if "." in s:  # nfdump prints ICMP as type.code
        t, c = s.split(".")
        return int(t) << 8 | int(c)
    return int(s)

got = {}
with open(dump_file) as f:
    for line in f:
        v = [x.strip() for x in line.split(",")]
        if len(v) < 13:
            continue
        first, last = epoch_ms(v[0]), epoch_ms(v[1])
        pr = PROTO.get(v[6], None)
        pr = int(v[6]) if pr is None else pr
        key = (v[2], v[3], int(v[4]), port(v[5]), pr, int(v[7]), int(v[11]))
        g = got.setdefault(key, {"flows": 0, "packets": 0, "bytes": 0, "flags": 0,
                                 "out": set(), "first": first, "last": last})
        g["flows"] += 1
        g["packets"] += int(v[8])
        g["bytes"] += int(v[9])
        g["flags"] |= flags(v[10])
        g["out"].add(int(v[12]))
        g["first"] = min(g["first"], first)
        g["last"] = max(g["last"], last)

errors = []
keys = packets = octets = 0
with open(truth_file) as f:
    for t in csv.DictReader(f):
        key = (t["src"], t["dst"], int(t["sport"]), int(t["dport"]), int(t["proto"]),
               int(t["tos"]), int(t["in_if"]))
        keys += 1
        packets += int(t["packets"])
        octets += int(t["bytes"])
        g = got.pop(key, None)
        if g is None:
            errors.append(f"missing {key}")
            continue
        want = (int(t["packets"]), int(t["bytes"]), int(t["tcp_flags"]), {int(t["out_if"])})
        have = (g["packets"], g["bytes"], g["flags"], g["out"])
        if want != have:
            errors.append(f"{key}: packets/bytes/flags/out want {want} got {have}")
        if mode == "exact" and g["flows"] != 1:
            errors.append(f"{key}: {g['flows']} flows, want 1")
        for name in ("first", "last"):
            if abs(g[name] - int(t[name + "_ms"])) > TOL_MS:
                errors.append(f"{key}: {name} {g[name]} want {t[name + '_ms']}")
for key in got:
    errors.append(f"unexpected {key}")
for e in errors[:20]:
    print(e)
if errors:
    print(f"{len(errors)} mismatches")
    sys.exit(1)
print(f"ok: {keys} keys, {packets} packets, {octets} bytes")
