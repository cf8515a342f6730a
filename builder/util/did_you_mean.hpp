#pragma once
// "did you mean" hints for mistyped names (CLI commands and options, cartridge YAML keys and
// Puppet modules): one rule for what is close enough, one wording.

#include <string>
#include <vector>

namespace bi {

// The candidate closest to `word` within a third of its length (at least 2 edits), or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// " (did you mean '<prefix><candidate>'?)", or "" when nothing is close.
std::string did_you_mean_suffix(const std::string& word, const std::vector<std::string>& candidates,
                                const std::string& prefix = "");

} // namespace bi
