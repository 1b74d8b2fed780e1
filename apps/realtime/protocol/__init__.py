"""Wire models of the OpenAI Realtime protocol; ``codec`` alone knows beta vs GA."""
