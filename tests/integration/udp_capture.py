# Receives UDP datagrams on 127.0.0.1 until `idle` seconds pass without one, then stores them
# as Ethernet/IPv4/UDP frames in a pcap so that tshark decodes them from a file (no capture
# privileges or interface timing involved). The port it bound is written to PORTFILE first.
#   python3 udp_capture.py PORTFILE OUT.pcap IDLE_SECONDS
import os, socket, struct, sys

portfile, out, idle = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
with open(portfile + ".tmp", "w") as f:
    f.write(str(port))
os.rename(portfile + ".tmp", portfile)
s.settimeout(idle)
dgrams = []
try:
    while True:
        dgrams.append(s.recv(65535))
except socket.timeout:
    pass
with open(out, "wb") as f:
    f.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for d in dgrams:
        udp = struct.pack("!HHHH", 40000, port, 8 + len(d), 0) + d
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        fr = bytes(12) + b"\x08\x00" + ip
        f.write(struct.pack("=IIII", 0, 0, len(fr), len(fr)) + fr)
