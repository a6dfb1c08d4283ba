"""Your own agents, outside the mlo-exp package (see docs/own_agent.md)."""
