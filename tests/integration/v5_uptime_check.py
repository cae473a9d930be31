#!/usr/bin/env python3
# Every NetFlow v5 datagram in a udp_capture.py pcap: the header's sysUptime is at or after
# every record's First and Last (issue 11 item 5). Collectors compute sysUptime - Last in 32-bit
# milliseconds: a header behind a record by 1 ms puts that flow 49.7 days in the past.
#   python3 v5_uptime_check.py DGRAMS.pcap FLOWS   (FLOWS: the records the sender exported)
import struct, sys

path, want = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
off, datagrams, records, errors, lead = 24, 0, 0, [], 0
while off < len(data):
    _, _, incl, _ = struct.unpack_from("=IIII", data, off)
    payload = data[off + 16 + 14 + 20 + 8:off + 16 + incl]
    off += 16 + incl
    version, count, uptime = struct.unpack_from("!HHI", payload)
    if version != 5 or len(payload) != 24 + 48 * count:
        errors.append(f"datagram {datagrams}: version {version}, {len(payload)} bytes")
        continue
    for i in range(count):
        first, last = struct.unpack_from("!II", payload, 24 + 48 * i + 24)
        for name, t in (("First", first), ("Last", last)):
            behind = (uptime - t) & 0xFFFFFFFF
            if behind >= 0x80000000:
                errors.append(f"datagram {datagrams} record {i}: sysUptime "
                              f"{uptime} is {0x100000000 - behind} ms behind its {name} {t}")
        lead = max(lead, (uptime - last) & 0xFFFFFFFF)
    datagrams += 1
    records += count
for e in errors[:20]:
    print(e)
if records != want:
    errors.append(f"{records} records received, {want} exported")
    print(errors[-1])
if errors:
    sys.exit(1)
print(f"ok: {datagrams} datagrams, {records} records, sysUptime >= First and Last in every "
      f"one (largest sysUptime - Last {lead} ms)")
