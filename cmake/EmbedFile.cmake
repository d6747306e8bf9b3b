# Writes OUTPUT, a C++ file defining promptcache::internal::${SYMBOL}
# (default kEmbeddedPrices) and ${SYMBOL}Size with the bytes of INPUT, as a
# hex array (no limits on literal length).
if(NOT SYMBOL)
  set(SYMBOL kEmbeddedPrices)
endif()
file(READ ${INPUT} content HEX)
string(LENGTH "${content}" hex_length)
math(EXPR byte_count "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUTPUT}
  "// Generated from ${INPUT}; do not edit.\n"
  "#include <cstddef>\n"
  "namespace promptcache::internal {\n"
  "extern const unsigned char ${SYMBOL}[];\n"
  "extern const size_t ${SYMBOL}Size;\n"
  "const unsigned char ${SYMBOL}[] = {${bytes}};\n"
  "const size_t ${SYMBOL}Size = ${byte_count};\n"
  "}  // namespace promptcache::internal\n")
