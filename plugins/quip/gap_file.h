/* -*- c++ -*- ----------------------------------------------------------
   anharmbench: what QUIP will find in a GAP model file, checked before QUIP
   reads it (QUIP ends the process on any fault it meets; see pair_quip.cpp).
------------------------------------------------------------------------- */

#ifndef ANHARMBENCH_GAP_FILE_H
#define ANHARMBENCH_GAP_FILE_H

#include <string>
#include <vector>

namespace anharmbench {

// largest atomic number a GAP model (and pair_coeff of pair style quip) may name
constexpr int GAP_MAX_Z = 118;

// What a GAP model file holds for one label, or why QUIP could not load it.
struct GapModel {
  std::string error;                      // empty: QUIP can load it
  std::vector<int> species;               // atomic numbers named by its descriptors, sorted
  bool any_species = false;               // a descriptor applies to every species
  std::vector<std::string> sparse_files;  // sparseX files it names, as QUIP opens them
};

// The model QUIP loads for 'IP GAP [label=LABEL]' from `text`, the contents of the
// xml file `path` (used in messages and to locate sparseX files):
//  - the text is well-formed XML (QUIP's parser stops the process otherwise; a
//    truncated file is the usual case);
//  - the <GAP_params> of that label, the first one without a label (IPModel_GAP);
//  - the <gpSparse> of the same label, fitted, with n_coordinate <gpCoordinates>
//    labelled LABEL1, LABEL2, ..., each holding a <descriptor> whose cutoff= is a
//    positive length (gp_readXML);
//  - the species the descriptors name (Z=, Z1=, ..., species_Z={...}) and the
//    sparseX files (sparseX_filename=, relative to the xml's folder) they need.
GapModel inspect_gap(const std::string &path, const std::string &text, const std::string &label);

}    // namespace anharmbench

#endif
