# Runs one real trial through `zcbench run --json` and validates the document
# against schema/run.schema.json with the report package's validator.
execute_process(
  COMMAND ${ZCBENCH} run --tx sendmmsg --rx recvmmsg --size 272 --rate 20000 --duration 0.5 --warmup 0.2 --json
  OUTPUT_FILE ${OUT} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 3)
  message("[  SKIPPED ] cannot run a trial here: ${err}")
  return()
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "zcbench run exited ${rc}: ${err}")
endif()
execute_process(
  COMMAND ${PYTHON} -m reports.validate ${OUT}
  WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE vrc OUTPUT_VARIABLE vout ERROR_VARIABLE verr)
if(NOT vrc EQUAL 0)
  message(FATAL_ERROR "run.json does not match the schema: ${vout}${verr}")
endif()
message(STATUS "run.json from zcbench run matches schema/run.schema.json")
