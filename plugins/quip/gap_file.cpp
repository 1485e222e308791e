/* ----------------------------------------------------------------------
   anharmbench: checks of a GAP model file before QUIP reads it (gap_file.h)

   QUIP's readers (FoX's XML parser, IPModel_GAP, GAP's gp_readXML) stop the
   process on the faults checked here; the tests are taken from what they
   require, not a full XML parser: well-formed structure, the elements and
   attributes they look up, and the labels they match.
------------------------------------------------------------------------- */

#include "gap_file.h"

#include "utils.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

using namespace LAMMPS_NS;

namespace anharmbench {
namespace {

// Fortran compares labels after trimming trailing blanks
std::string rtrim(std::string s)
{
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

// ------------------------------------------------------------------ XML walk
// A start tag: its name and attributes (values with the predefined entities decoded).
struct XmlTag {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  const std::string *find(const char *key) const
  {
    for (const auto &kv : attributes)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
  std::string get(const char *key) const
  {
    const std::string *v = find(key);
    return v ? *v : std::string();
  }
};

size_t line_at(const std::string &text, size_t pos)
{
  return 1 + (size_t) std::count(text.begin(), text.begin() + std::min(pos, text.size()), '\n');
}

std::string decode_entities(const std::string &v)
{
  static const std::pair<const char *, char> entities[] = {
      {"&quot;", '"'}, {"&apos;", '\''}, {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}};
  std::string out;
  for (size_t i = 0; i < v.size(); i++) {
    bool done = false;
    if (v[i] == '&')
      for (const auto &e : entities)
        if (v.compare(i, strlen(e.first), e.first) == 0) {
          out += e.second;
          i += strlen(e.first) - 1;
          done = true;
          break;
        }
    if (!done) out += v[i];
  }
  return out;
}

bool xml_name_char(char c)
{
  return std::isalnum((unsigned char) c) || c == '_' || c == '-' || c == '.' || c == ':';
}

// Walk the elements of an XML document, calling start(tag, offset just after the
// start tag) and end(name, offset of the end tag) (both for a self-closing element).
// Checks the structure whose faults QUIP's XML parser stops the process on: tags
// that do not close or nest, attributes without quoted values, comments, CDATA
// sections or processing instructions that do not end, no element at all (an
// empty file). Returns the first fault ("" when none), with its line.
template <class Start, class End>
std::string walk_xml(const std::string &t, Start &&start, End &&end)
{
  const size_t n = t.size();
  std::vector<std::pair<std::string, size_t>> open;    // name, offset of its '<'
  bool any = false;
  size_t i = 0;
  auto skip_to = [&](const char *what, size_t from, const char *kind) -> std::string {
    const size_t j = t.find(what, from);
    if (j == std::string::npos)
      return fmt::format("the {} at line {} does not end", kind, line_at(t, i));
    i = j + strlen(what);
    return "";
  };
  while ((i = t.find('<', i)) != std::string::npos) {
    std::string fault;
    if (t.compare(i, 4, "<!--") == 0) fault = skip_to("-->", i + 4, "comment");
    else if (t.compare(i, 9, "<![CDATA[") == 0) fault = skip_to("]]>", i + 9, "CDATA section");
    else if (t.compare(i, 2, "<?") == 0) fault = skip_to("?>", i + 2, "processing instruction");
    else if (t.compare(i, 2, "<!") == 0) fault = skip_to(">", i + 2, "declaration");
    else {
      const bool closing = i + 1 < n && t[i + 1] == '/';
      size_t p = i + (closing ? 2 : 1);
      const size_t name0 = p;
      while (p < n && xml_name_char(t[p])) p++;
      if (p == name0)
        return fmt::format("the '<' at line {} does not start a tag (a '<' in text must be "
                           "written &lt;)",
                           line_at(t, i));
      XmlTag tag;
      tag.name = t.substr(name0, p - name0);
      auto skip_space = [&] {
        while (p < n && std::isspace((unsigned char) t[p])) p++;
      };
      if (closing) {
        skip_space();
        if (p >= n || t[p] != '>')
          return fmt::format("the end tag </{}> at line {} is not closed by '>'", tag.name,
                             line_at(t, i));
        if (open.empty() || open.back().first != tag.name)
          return open.empty()
              ? fmt::format("the end tag </{}> at line {} closes no element", tag.name,
                            line_at(t, i))
              : fmt::format("the end tag </{}> at line {} does not close <{}> of line {}",
                            tag.name, line_at(t, i), open.back().first,
                            line_at(t, open.back().second));
        open.pop_back();
        end(tag.name, i);
        i = p + 1;
        continue;
      }
      bool self_closing = false;
      for (;;) {
        skip_space();
        if (p >= n)
          return fmt::format("the tag <{}> at line {} does not end (the file is truncated)",
                             tag.name, line_at(t, i));
        if (t[p] == '>') {
          p++;
          break;
        }
        if (t.compare(p, 2, "/>") == 0) {
          p += 2;
          self_closing = true;
          break;
        }
        const size_t key0 = p;
        while (p < n && xml_name_char(t[p])) p++;
        const std::string key = t.substr(key0, p - key0);
        skip_space();
        if (key.empty() || p >= n || t[p] != '=')
          return fmt::format("the tag <{}> at line {} has a malformed attribute (expected "
                             "name=\"value\")",
                             tag.name, line_at(t, i));
        p++;
        skip_space();
        const char quote = p < n ? t[p] : '\0';
        const size_t close = (quote == '"' || quote == '\'') ? t.find(quote, p + 1)
                                                              : std::string::npos;
        if (close == std::string::npos)
          return fmt::format("attribute {} of the tag <{}> at line {} has no quoted value", key,
                             tag.name, line_at(t, i));
        tag.attributes.emplace_back(key, decode_entities(t.substr(p + 1, close - p - 1)));
        p = close + 1;
      }
      any = true;
      start(tag, p);
      if (self_closing)
        end(tag.name, p);
      else
        open.emplace_back(tag.name, i);
      i = p;
    }
    if (!fault.empty()) return fault;
  }
  if (!open.empty())
    return fmt::format("the element <{}> opened at line {} is never closed (the file is "
                       "truncated)",
                       open.back().first, line_at(t, open.back().second));
  if (!any) return "it holds no XML element";
  return "";
}

// Atomic numbers named by one <descriptor> of a GAP model: every Z=, Z1=, Z2=, ...
// value and every species_Z={...} list; a descriptor with no species key (or a 0)
// applies to every species. Its cutoff= must be a positive length (QUIP builds
// its neighbour search from it); returns that fault, or "".
std::string scan_descriptor(const std::string &text, std::set<int> &species, bool &any_species)
{
  bool named = false;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    const auto eq = tok.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = tok.substr(0, eq);
    std::string value = tok.substr(eq + 1);
    std::vector<std::string> values;
    if (key == "cutoff") {
      char *stop = nullptr;
      const double rc = std::strtod(value.c_str(), &stop);
      if (stop == value.c_str() || *stop != '\0' || !std::isfinite(rc) || !(rc > 0.0))
        return fmt::format("a descriptor has cutoff={}, not a positive length in Angstrom",
                           value);
      continue;
    }
    if (key == "species_Z") {
      // species_Z={90 8 } possibly split over several whitespace tokens
      std::string list = value;
      while (list.find('}') == std::string::npos && (in >> tok)) list += " " + tok;
      for (char &c : list)
        if (c == '{' || c == '}' || c == ':') c = ' ';
      std::istringstream items(list);
      std::string item;
      while (items >> item) values.push_back(item);
    } else if (key.size() >= 1 && key[0] == 'Z' &&
               key.find_first_not_of("0123456789", 1) == std::string::npos) {
      values.push_back(value);
    } else {
      continue;
    }
    for (const auto &v : values) {
      char *stop = nullptr;
      const long z = std::strtol(v.c_str(), &stop, 10);
      if (stop == v.c_str() || *stop != '\0') continue;
      named = true;
      if (z <= 0)
        any_species = true;
      else if (z <= GAP_MAX_Z)
        species.insert((int) z);
    }
  }
  if (!named) any_species = true;
  return "";
}

}    // namespace

GapModel inspect_gap(const std::string &path, const std::string &text, const std::string &label)
{
  struct Sparse {
    std::string label, n_coordinate, fitted;
    bool has_n, has_fitted;
  };
  struct Coordinates {
    std::string label, sparse_file;
    bool has_sparse_file;
    std::vector<std::string> descriptors;
  };
  std::vector<std::string> params_labels;
  std::vector<Sparse> sparse;
  std::vector<Coordinates> coords;
  int in_coords = -1;
  size_t descriptor_start = std::string::npos;

  GapModel model;
  const std::string fault = walk_xml(
      text,
      [&](const XmlTag &tag, size_t after) {
        if (tag.name == "GAP_params") {
          params_labels.push_back(rtrim(tag.get("label")));
        } else if (tag.name == "gpSparse") {
          sparse.push_back({rtrim(tag.get("label")), tag.get("n_coordinate"), tag.get("fitted"),
                            tag.find("n_coordinate") != nullptr, tag.find("fitted") != nullptr});
        } else if (tag.name == "gpCoordinates") {
          coords.push_back({rtrim(tag.get("label")), tag.get("sparseX_filename"),
                            tag.find("sparseX_filename") != nullptr, {}});
          in_coords = (int) coords.size() - 1;
        } else if (tag.name == "descriptor") {
          descriptor_start = after;
        }
      },
      [&](const std::string &name, size_t at) {
        if (name == "descriptor" && descriptor_start != std::string::npos && in_coords >= 0)
          coords[in_coords].descriptors.push_back(
              text.substr(descriptor_start, at - descriptor_start));
        if (name == "descriptor") descriptor_start = std::string::npos;
        if (name == "gpCoordinates") in_coords = -1;
      });
  if (!fault.empty()) {
    model.error = fmt::format("QUIP model file {} is not well-formed XML: {}; give the complete "
                              "xml written by gap_fit",
                              path, fault);
    return model;
  }
  if (params_labels.empty()) {
    model.error = fmt::format("{} is not a GAP model file (no <GAP_params> element); give the "
                              "xml written by gap_fit",
                              path);
    return model;
  }
  std::string chosen = params_labels.front();
  if (!label.empty()) {
    if (std::find(params_labels.begin(), params_labels.end(), label) == params_labels.end()) {
      model.error = fmt::format("GAP model file {} holds no <GAP_params label=\"{}\"> (its "
                                "labels: {}); give one of them as 'IP GAP label=NAME', or "
                                "'IP GAP' for the first",
                                path, label, utils::join_words(params_labels, ", "));
      return model;
    }
    chosen = label;
  }

  // gpSparse: with a label, the first one that matches; without, QUIP keeps the last
  const Sparse *gp = nullptr;
  for (const auto &sp : sparse)
    if (chosen.empty() || sp.label == chosen) {
      gp = &sp;
      if (!chosen.empty()) break;
    }
  if (gp == nullptr) {
    model.error = fmt::format("GAP model file {} has <GAP_params label=\"{}\"> but no "
                              "<gpSparse label=\"{}\"> (the fitted model): the file is "
                              "incomplete; give the xml written by gap_fit",
                              path, chosen, chosen);
    return model;
  }
  char *stop = nullptr;
  const long ncoord = gp->has_n ? std::strtol(gp->n_coordinate.c_str(), &stop, 10) : 0;
  if (!gp->has_n || stop == gp->n_coordinate.c_str() || *stop != '\0' || ncoord < 1) {
    model.error = fmt::format("GAP model file {}: <gpSparse label=\"{}\"> has no valid "
                              "n_coordinate (got '{}'): the file is damaged",
                              path, chosen, gp->n_coordinate);
    return model;
  }
  if (gp->has_fitted) {
    const std::string f = utils::uppercase(utils::trim(gp->fitted));
    const char c = f.empty() ? '?' : (f[0] == '.' && f.size() > 1 ? f[1] : f[0]);
    if (c != 'T') {
      model.error = fmt::format("GAP model file {}: <gpSparse label=\"{}\"> is not fitted "
                                "(fitted=\"{}\"); give the xml of a finished gap_fit run",
                                path, chosen, gp->fitted);
      return model;
    }
  }

  std::set<int> species;
  for (long k = 1; k <= ncoord; k++) {
    const std::string want = chosen + std::to_string(k);
    const Coordinates *c = nullptr;
    for (const auto &cc : coords)
      if (cc.label == want) {
        c = &cc;
        break;
      }
    if (c == nullptr) {
      model.error = fmt::format("GAP model file {}: <gpSparse label=\"{}\"> declares {} "
                                "descriptors but <gpCoordinates label=\"{}\"> is missing: the "
                                "file is incomplete",
                                path, chosen, ncoord, want);
      return model;
    }
    if (c->descriptors.empty()) {
      model.error = fmt::format("GAP model file {}: <gpCoordinates label=\"{}\"> holds no "
                                "<descriptor>: the file is incomplete",
                                path, want);
      return model;
    }
    for (const auto &d : c->descriptors) {
      const std::string bad = scan_descriptor(d, species, model.any_species);
      if (!bad.empty()) {
        model.error = fmt::format("GAP model file {}: in <gpCoordinates label=\"{}\"> {}",
                                  path, want, bad);
        return model;
      }
    }
    if (c->has_sparse_file) {
      // QUIP opens it from the model file's folder
      const auto slash = path.rfind('/');
      const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
      model.sparse_files.push_back(c->sparse_file.size() > 0 && c->sparse_file[0] == '/'
                                       ? c->sparse_file
                                       : dir + c->sparse_file);
    }
  }
  model.species.assign(species.begin(), species.end());
  return model;
}

}    // namespace anharmbench
