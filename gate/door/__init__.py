"""The door: a decision out into the world (actuators, signed badge claims, MQTT transport and the jobs on it)."""
