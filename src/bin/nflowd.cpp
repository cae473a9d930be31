// nflowd: NetFlow v5 for the packets an NFLOG rule delivers. Thin: options in, engine run.
#include "nflowd/config.hpp"
#include "nflowd/offline.hpp"

#include <cstdio>
#include <exception>
#include <iostream>

int main(int argc, char* argv[]) {
    nflowd::CommandLine cl;
    try {
        cl = nflowd::parse_command_line(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "nflowd: " << e.what() << "\n";
        return 2;
    }
    if (cl.action != nflowd::Action::run) {
        std::cout << cl.text;
        return 0;
    }
    try {
        if (!cl.config.read_file.empty()) {
            std::cout << nflowd::format_summary(nflowd::run_offline(cl.config));
            return 0;
        }
        std::cerr << "nflowd: live NFLOG capture is not built yet; use --read FILE\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "nflowd: " << e.what() << "\n";
        return 1;
    }
}
