// libFuzzer: any bytes as rtnetlink datagrams for LinkState, both as a dump's entries and as
// updates; the table it publishes must hold only bounded names and correctly mapped indexes.
#include "nflowd/link_names.hpp"

#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const nflowd::SnmpRules rules = nflowd::SnmpRules::parse("eth*=100,ppp:200,lo=1");
    // recv() buffers are netlink-aligned, as the parser requires; an exact-size heap copy
    // lets ASan catch any read past the datagram.
    std::vector<std::uint32_t> aligned((size + 3) / 4);
    if (size) std::memcpy(aligned.data(), data, size);
    const std::span<const std::byte> buf(reinterpret_cast<const std::byte*>(aligned.data()), size);

    nflowd::LinkState state(rules);
    nflowd::LinkStats stats;
    state.begin_dump(1, 0); // messages with sequence 1 from port 0 are the dump's
    state.consume(buf, stats);
    const auto first = state.snapshot(stats);
    state.consume(buf, stats); // the dump may have ended: the same bytes as updates
    const auto t = state.snapshot(stats);
    if (t->generation < first->generation || stats.known != t->links.size()) std::abort();
    for (const auto& [ifindex, link] : t->links) {
        if (ifindex == 0 || link.name.empty() || link.name.size() > nflowd::kMaxLinkName ||
            link.alias.size() > nflowd::kMaxLinkAlias)
            std::abort();
        if (link.name.find('\0') != std::string::npos || link.alias.find('\0') != std::string::npos)
            std::abort();
        if (link.index != rules.map(link.name, ifindex)) std::abort();
    }
    if (state.snapshot(stats) != t) std::abort(); // nothing new: the same snapshot
    // MTUs: a bounded table, ending at a link, holding MTUs of known links only.
    const auto mtus = state.mtu_snapshot();
    const auto& m = mtus->by_ifindex;
    if (m.size() > nflowd::kMtuIndexes || (!m.empty() && t->find(m.size() - 1) == nullptr))
        std::abort();
    for (std::uint32_t i = 0; i < m.size(); ++i)
        if (m[i] == 0 || (m[i] != nflowd::kDefaultMtu && t->find(i) == nullptr)) std::abort();
    if (state.mtu_snapshot() != mtus) std::abort();
    return 0;
}
