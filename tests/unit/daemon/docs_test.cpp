// The manuals and the README list every option of the table with the default the table (and
// --help) gives: nflowd(8), nflowd.conf(5), README.md's option table, contrib/nflowd.conf.
#include "nflowd/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace nflowd {
namespace {

std::string source_file(const std::string& relative) {
    std::ifstream in(std::string(NFLOWD_SOURCE_DIR) + "/" + relative);
    EXPECT_TRUE(in) << relative;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
        s.replace(p, from.size(), to);
    return s;
}

// An mdoc line as words: macro names dropped, escapes resolved; good enough to find
// "default 15" or "Default: none" in an entry's prose.
std::string flatten_mdoc(const std::string& line) {
    std::string text = line;
    if (!text.empty() && text.front() == '.') {
        static const std::regex macro(R"((^|\s)\.?[A-Z][a-z][a-z]?(?=\s|$))");
        text = std::regex_replace(text, macro, " ");
    }
    text = replace_all(text, "\\(en", "-");
    text = replace_all(text, "\\-", "-");
    return replace_all(text, "\\&", "");
}

// The entry of a tagged list item whose head line starts with `head`, up to the next item.
std::string mdoc_entry(const std::string& page, const std::string& head) {
    std::istringstream in(page);
    std::string line;
    std::string entry;
    bool on = false;
    while (std::getline(in, line)) {
        if (on && (line.rfind(".It ", 0) == 0 || line.rfind(".El", 0) == 0)) break;
        if (!on && line.rfind(head, 0) == 0 &&
            (line.size() == head.size() || line[head.size()] == ' ')) {
            on = true;
            continue;
        }
        if (on) entry += flatten_mdoc(line) + " ";
    }
    return std::regex_replace(entry, std::regex(R"(\s+)"), " ");
}

std::string escape_regex(const std::string& s) {
    return std::regex_replace(s, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
}

bool states_default(const std::string& entry, const std::string& value) {
    const std::regex re("(^|[^a-z])default:? (the )?" + escape_regex(value) + "([ .,;:)]|$)",
                        std::regex::icase);
    return std::regex_search(entry, re);
}

TEST(Docs, NflowdManualGivesEveryDefault) {
    const auto page = source_file("man/nflowd.8");
    for (const auto& o : option_table()) {
        const auto entry = mdoc_entry(page, ".It Fl -" + std::string(o.name));
        ASSERT_FALSE(entry.empty()) << "nflowd(8) has no entry for --" << o.name;
        if (!o.default_text.empty()) {
            EXPECT_TRUE(states_default(entry, o.default_text))
                << "nflowd(8) --" << o.name << " should say \"default " << o.default_text
                << "\": " << entry;
        }
        EXPECT_EQ(entry.find("[runtime]") != std::string::npos, o.runtime) << o.name;
    }
}

TEST(Docs, ConfManualGivesEveryDefault) {
    const auto page = source_file("man/nflowd.conf.5");
    for (const auto& o : option_table()) {
        const auto entry = mdoc_entry(page, ".It Cm " + std::string(o.name) + " No =");
        ASSERT_FALSE(entry.empty()) << "nflowd.conf(5) has no entry for " << o.name;
        if (!o.default_text.empty()) {
            EXPECT_TRUE(states_default(entry, o.default_text))
                << "nflowd.conf(5) " << o.name << " should say \"Default " << o.default_text
                << "\": " << entry;
        }
        EXPECT_EQ(entry.find("[runtime]") != std::string::npos, o.runtime) << o.name;
    }
}

// "| `--name ARG` | default | ... |" in README.md; "—" where there is no default.
TEST(Docs, ReadmeTableGivesEveryDefault) {
    const auto readme = source_file("README.md");
    for (const auto& o : option_table()) {
        const std::regex row("\\n\\| `--" + std::string(o.name) +
                             "[ `](?:[^|\\\\]|\\\\.)*\\| ([^|]*) \\|");
        std::smatch m;
        ASSERT_TRUE(std::regex_search(readme, m, row)) << "README lacks --" << o.name;
        const auto want = o.default_text.empty() ? std::string("—") : o.default_text;
        EXPECT_EQ(m[1].str(), want) << "README's default for --" << o.name;
    }
}

// "#name = value" shows the default where the default does not depend on the machine.
TEST(Docs, ExampleConfShowsTheDefaults) {
    const auto conf = source_file("contrib/nflowd.conf");
    const Config defaults = default_config();
    for (const auto& o : option_table()) {
        const std::regex line("\\n#?" + std::string(o.name) + " = ([^\\n]*)");
        std::smatch m;
        if (!std::regex_search(conf, m, line)) continue; // contrib_check wants each listed
        const auto value = option_value(defaults, o.name);
        if (value.empty() || o.default_text != value) continue; // an example, not a default
        EXPECT_EQ(m[1].str(), value) << "contrib/nflowd.conf's " << o.name;
    }
}

} // namespace
} // namespace nflowd
