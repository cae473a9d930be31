// nflowd: NetFlow v5 for the packets an NFLOG rule delivers. Thin: options in, engine run.
#include "nflowd/config.hpp"
#include "nflowd/daemon.hpp"
#include "nflowd/offline.hpp"

#include <exception>
#include <iostream>
#include <string>
#include <vector>

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
        nflowd::Daemon daemon(cl.config, std::vector<std::string>(argv, argv + argc));
        return daemon.run();
    } catch (const std::exception& e) {
        std::cerr << "nflowd: " << e.what() << "\n";
        return 1;
    }
}
