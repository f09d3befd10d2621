# cmake -DSCDOC=... -DIN=page.scd -DOUT=page -DVERSION=x.y.z -P scdoc.cmake
# Fills in @EVPROXY_VERSION@, runs scdoc < IN > OUT.tmp and renames on success, so a failed run
# leaves no half-written page.
file(READ ${IN} text)
string(REPLACE "@EVPROXY_VERSION@" "${VERSION}" text "${text}")
file(WRITE ${OUT}.scd "${text}")
execute_process(
  COMMAND ${SCDOC}
  INPUT_FILE ${OUT}.scd
  OUTPUT_FILE ${OUT}.tmp
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "scdoc failed on ${IN} (${rc})")
endif()
file(RENAME ${OUT}.tmp ${OUT})
