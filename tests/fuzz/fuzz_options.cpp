// libFuzzer: any text as the value of any option (aggregation rules, destinations, groups,
// numbers): either accepted and round-trippable, or a ConfigError; nothing else.
#include "nflowd/config.hpp"

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    static const auto& options = nflowd::option_table();
    const auto& option = options[data[0] % options.size()];
    const std::string value(reinterpret_cast<const char*>(data + 1), size - 1);
    nflowd::Config config;
    try {
        nflowd::apply_option(config, option.name, value);
    } catch (const nflowd::ConfigError&) {
        return 0;
    }
    // What was accepted prints back to a value that parses to the same thing.
    const auto printed = nflowd::option_value(config, option.name);
    nflowd::Config again;
    try {
        nflowd::apply_option(again, option.name, printed);
    } catch (const nflowd::ConfigError&) {
        if (!printed.empty()) std::abort();
        return 0;
    }
    if (nflowd::option_value(again, option.name) != printed) std::abort();
    return 0;
}
