-- end a batch of attempts as succeeded in one round trip (tasks_ended)
WITH /*include tasks_ended*/
SELECT * FROM done
