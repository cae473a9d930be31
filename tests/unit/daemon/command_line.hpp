// Test helpers shared by the option tests: run parse_command_line on a vector of arguments
// (argv[0] added) and capture the message of a refused command line.
#pragma once

#include "nflowd/config.hpp"

#include <exception>
#include <string>
#include <vector>

namespace nflowd::test {

inline CommandLine parse(std::vector<std::string> args) {
    args.insert(args.begin(), "nflowd");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

// The error parse() throws for `args`, "" when it accepts them.
inline std::string error_of(std::vector<std::string> args) {
    try {
        parse(std::move(args));
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

} // namespace nflowd::test
