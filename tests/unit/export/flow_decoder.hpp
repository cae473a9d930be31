// A NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) collector for the tests, written from the RFCs
// and sharing no code with the encoder: learns templates, decodes records, rejects malformed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace nflowd::test {

struct TemplateField {
    std::uint16_t ie = 0; // the enterprise bit cleared
    std::uint16_t length = 0;
    std::uint32_t enterprise = 0; // 0 = IANA
};

struct DecodedTemplate {
    std::uint16_t id = 0;
    bool options = false;
    std::size_t scope_count = 0; // the first scope_count fields are scope fields
    std::vector<TemplateField> fields;
};

// One data record: each field's bytes by information element (scope fields of an options
// record are under their IE too; v9 scope types 1-5 collide with IEs but never in one template).
struct DecodedRecord {
    std::uint16_t template_id = 0;
    bool options = false;
    std::map<std::uint16_t, std::vector<std::uint8_t>> fields;

    bool has(std::uint16_t ie) const { return fields.count(ie) != 0; }
    // A big-endian unsigned field (at most 8 bytes); throws std::out_of_range if absent.
    std::uint64_t value(std::uint16_t ie) const;
    std::string text(std::uint16_t ie) const; // a string field, NULs at the end dropped
    // An address field as text: 4 bytes dotted quad, 16 bytes RFC 5952 (IPv6, NAT 225/281...).
    std::string address(std::uint16_t ie) const;
    // A macAddress field (56, 80) as aa:bb:cc:dd:ee:ff.
    std::string mac(std::uint16_t ie) const;
};

struct DecodedMessage {
    std::uint16_t version = 0;
    std::uint16_t count = 0;       // v9 header count
    std::uint32_t uptime_ms = 0;   // v9 sysUptime
    std::uint32_t export_secs = 0; // v9 unix secs, IPFIX export time
    std::uint32_t sequence = 0;
    std::uint32_t domain = 0;               // v9 source ID, IPFIX observation domain
    std::vector<DecodedTemplate> templates; // template and options template records, in order
    std::vector<DecodedRecord> records;     // data and options data records, in order
    std::vector<std::uint16_t> set_ids;     // every set, in order
    std::size_t flow_records() const;       // records that are not options records
};

class FlowDecoder {
  public:
    // Decodes one message; on a malformed one returns nothing and says why in error().
    // Data sets need their template learnt first (here or in an earlier message).
    std::optional<DecodedMessage> decode(std::span<const std::byte> bytes);
    const std::string& error() const { return error_; }
    const DecodedTemplate* find(std::uint32_t domain, std::uint16_t id) const;

  private:
    std::map<std::pair<std::uint32_t, std::uint16_t>, DecodedTemplate> templates_;
    std::string error_;
};

} // namespace nflowd::test
