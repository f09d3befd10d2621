/* The unit-job tests (test_job.c), run from test_sd.c's main. */
#ifndef EVPROXY_TEST_JOB_H
#define EVPROXY_TEST_JOB_H

/* Failed tests: 0 when all pass. */
int run_job_tests(void);

#endif
