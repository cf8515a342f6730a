#pragma once
// The HTML build report: one self-contained page (no network, no external file) drawn from
// an image's manifest: the phase timeline (cache hits vs built), the image's size by
// package and by top-level folder, the layers and their keys, the inputs' digests and the
// registrations. The manifest is embedded as JSON and drawn by the page's own script, so a
// report of an older manifest shows what that manifest has and says what it lacks.

#include <string>

#include <nlohmann/json.hpp>

namespace bi {

std::string render_html_report(const nlohmann::json& manifest);

// The manifest as JSON text that is safe inside a <script> element: "</" and the
// characters HTML or JavaScript parsers treat specially are escaped.
std::string json_for_script_element(const nlohmann::json& value);

} // namespace bi
