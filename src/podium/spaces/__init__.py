"""The running instance, one service a job: the spaces this node knows (`directory`), the people
of each stage (`members`), the stages it runs (`stages`), the schedule that opens them on time
(`schedule`), their listeners (`listeners`), and which node runs which stage (`ownership`)."""
