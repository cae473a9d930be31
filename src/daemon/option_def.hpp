// One option's behaviour behind one interface: a typed Config field with the codec that
// parses, prints, compares and copies it and hands it to Boost.Program_options (internal).
#pragma once

#include "nflowd/config.hpp"

#include <boost/any.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <boost/program_options/variables_map.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace nflowd::options {

namespace po = boost::program_options;

class OptionDef {
  public:
    OptionDef(OptionInfo info, std::string_view default_note)
        : info_(std::move(info)), default_note_(default_note) {}
    virtual ~OptionDef() = default;
    OptionDef(const OptionDef&) = delete;
    OptionDef& operator=(const OptionDef&) = delete;

    const OptionInfo& info() const noexcept { return info_; }
    // Said instead of the value where the default depends on the machine ("number of CPUs")
    // or is empty but meaningful ("none").
    std::string_view default_note() const noexcept { return default_note_; }

    virtual void set(Config& config, std::string_view text) const = 0; // validate and store
    virtual std::string get(const Config& config) const = 0;
    virtual bool equal(const Config& a, const Config& b) const = 0;
    virtual void copy(const Config& from, Config& to) const = 0;
    // A fresh typed Program_options value for this option's field.
    virtual std::unique_ptr<po::value_semantic> semantic() const = 0;
    // Stores what semantic() parsed into the variables_map.
    virtual void store(Config& config, const po::variable_value& value) const = 0;

  private:
    OptionInfo info_;
    std::string_view default_note_;
};

// The table, indexed by Opt.
const std::vector<std::unique_ptr<const OptionDef>>& option_defs();

// What a Program_options value holds: the typed value and the text it came from (the
// control group keeps the name the operator wrote, not the gid it resolved to).
template <class T> struct Parsed {
    T value;
    std::string text;
};

// A codec may append a repeated occurrence (--group 5 --group 9) to what earlier ones gave.
template <class Codec>
concept Repeatable = requires(const Codec& c, typename Codec::type& v) {
    c.append(std::string_view{}, v, std::string_view{});
};

// A codec may print a value from the text the operator gave rather than from the value.
template <class Codec>
concept Displays = requires(const Codec& c, const typename Codec::type& v) {
    { c.display(v, std::string_view{}) } -> std::convertible_to<std::string>;
};

// A switch takes no value on the command line (--natevents alone), one in the file.
template <class Codec>
concept Switch = Codec::kSwitch;

// Typed Program_options value: each token goes through the codec, so a bad value fails with
// the same message on the command line, in the file and in nflowctl set.
template <class Codec>
class CodecValue final : public po::value_semantic_codecvt_helper<char>,
                         public po::typed_value_base {
  public:
    using T = typename Codec::type;
    CodecValue(std::string_view name, Codec codec) : name_(name), codec_(std::move(codec)) {}

    std::string name() const override { return "arg"; }
    unsigned min_tokens() const override { return Switch<Codec> ? 0 : 1; }
    unsigned max_tokens() const override { return 1; }
    bool is_composing() const override { return Repeatable<Codec>; }
    bool is_required() const override { return false; }
    bool apply_default(boost::any&) const override { return false; }
    void notify(const boost::any&) const override {}
    const std::type_info& value_type() const override { return typeid(Parsed<T>); }

  protected:
    void xparse(boost::any& store, const std::vector<std::string>& tokens) const override {
        if (tokens.empty()) { // a switch given alone
            po::validators::check_first_occurrence(store);
            store = Parsed<T>{codec_.parse(name_, ""), "1"};
            return;
        }
        for (const auto& token : tokens) {
            if constexpr (Repeatable<Codec>) {
                if (auto* earlier = boost::any_cast<Parsed<T>>(&store)) {
                    codec_.append(name_, earlier->value, token);
                    earlier->text += "," + token;
                    continue;
                }
            }
            po::validators::check_first_occurrence(store); // --snaplen 1 --snaplen 2
            store = Parsed<T>{codec_.parse(name_, token), token};
        }
    }

  private:
    std::string_view name_;
    Codec codec_;
};

struct NoMirror {};

// An option whose value lives in the Config field Access returns; Mirror, when given, is
// the std::string member that keeps its printed form (destination_text, ...).
template <class Codec, class Access, class Mirror> class TypedOption final : public OptionDef {
  public:
    using T = typename Codec::type;
    static constexpr bool kMirrored = !std::is_same_v<Mirror, NoMirror>;

    TypedOption(OptionInfo info, Codec codec, std::string_view note)
        : OptionDef(std::move(info), note), codec_(std::move(codec)) {}

    void set(Config& c, std::string_view text) const override {
        put(c, codec_.parse(info().name, text), text);
    }
    std::string get(const Config& c) const override {
        if constexpr (kMirrored)
            return Mirror{}(c);
        else
            return codec_.format(Access{}(c));
    }
    bool equal(const Config& a, const Config& b) const override {
        return Access{}(a) == Access{}(b);
    }
    void copy(const Config& from, Config& to) const override {
        Access{}(to) = Access{}(from);
        if constexpr (kMirrored) Mirror{}(to) = Mirror{}(from);
    }
    std::unique_ptr<po::value_semantic> semantic() const override {
        return std::make_unique<CodecValue<Codec>>(info().name, codec_);
    }
    void store(Config& c, const po::variable_value& value) const override {
        const auto& parsed = value.as<Parsed<T>>();
        put(c, parsed.value, parsed.text);
    }

  private:
    void put(Config& c, T value, std::string_view text) const {
        if constexpr (kMirrored) {
            if constexpr (Displays<Codec>)
                Mirror{}(c) = codec_.display(value, text);
            else
                Mirror{}(c) = codec_.format(value);
        }
        Access{}(c) = std::move(value);
    }

    Codec codec_;
};

// What the table states of an option besides its type (see OptionInfo).
struct Decl {
    std::string_view name;
    std::string_view argument;
    std::string_view help;
    bool runtime;
    Opt id;
};

// Access and Mirror are captureless generic lambdas naming a member, e.g.
// [](auto& c) -> auto& { return c.table.hashsize; }: one spelling for const and non-const.
template <class Codec, class Access, class Mirror = NoMirror>
std::unique_ptr<const OptionDef> make_option(const Decl& d, Codec codec, Access, Mirror = {},
                                             std::string_view default_note = {}) {
    OptionInfo info{d.name, d.argument, d.help, d.runtime, d.id, {}};
    return std::make_unique<TypedOption<Codec, Access, Mirror>>(std::move(info), std::move(codec),
                                                                default_note);
}

} // namespace nflowd::options
