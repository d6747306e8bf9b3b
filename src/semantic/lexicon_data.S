/* The lexicon text (data/lexicon/wordnet_lexicon.txt) embedded verbatim in
   .rodata, between promptcache_lexicon_begin and promptcache_lexicon_end, so
   that the library needs no data file at run time. The build defines
   PROMPTCACHE_LEXICON_PATH, the file's path as a string literal, and makes
   this object depend on the file (.incbin is invisible to depfiles). */
#ifndef PROMPTCACHE_LEXICON_PATH
#error "PROMPTCACHE_LEXICON_PATH must name data/lexicon/wordnet_lexicon.txt"
#endif
#if !defined(__ELF__)
#error "lexicon_data.S is written for ELF targets"
#endif

  .section .rodata.promptcache_lexicon,"a",%progbits
  .globl promptcache_lexicon_begin
  .globl promptcache_lexicon_end
  .hidden promptcache_lexicon_begin
  .hidden promptcache_lexicon_end
  .type promptcache_lexicon_begin, %object
  .type promptcache_lexicon_end, %object
promptcache_lexicon_begin:
  .incbin PROMPTCACHE_LEXICON_PATH
promptcache_lexicon_end:
  .byte 0
  .size promptcache_lexicon_begin, promptcache_lexicon_end - promptcache_lexicon_begin
  .size promptcache_lexicon_end, 1

  /* No executable stack for objects linked with this one. */
  .section .note.GNU-stack,"",%progbits
